"""Headless Chromium driven over the Chrome DevTools protocol, with the standard library only.

A ~100-line WebSocket client (RFC 6455: client frames masked, text frames, fragmentation, ping)
is enough for CDP, so the browser test needs no new dependency. :class:`Browser` starts Debian's
``chromium`` in headless mode (no sandbox, GPU, QUIC, first-run, background networking, component
updates or sync; a private profile; DNS mapped to nowhere), :meth:`Browser.render` loads one page at
a given viewport and returns what it saw: console errors, exceptions, network requests, layout
measurements and screenshots.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM_NAMES = ("chromium", "chromium-browser")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--host-resolver-rules=MAP * ~NOTFOUND")

# Runs in the page: layout facts the test asserts on.
MEASURE = r"""
(() => {
  const vw = window.innerWidth;
  const rect = (sel) => { const e = document.querySelector(sel); if (!e) return null;
                          const r = e.getBoundingClientRect(); return {top: r.top + scrollY, bottom: r.bottom + scrollY}; };
  // Overflow: an element past the viewport's right edge, or cut off by a clipping ancestor
  // (nbconvert's output areas scroll). Inside an intended scroll box (.mbm-scroll) is fine.
  const over = [];
  for (const e of document.body.querySelectorAll('*')) {
    const box = e.closest('.mbm-scroll');
    if (box && box !== e && ['auto', 'scroll'].includes(getComputedStyle(box).overflowX)) continue;
    const r = e.getBoundingClientRect();
    if (r.width === 0) continue;
    let bad = r.right > vw + 1;
    for (let p = e.parentElement; p && !bad && p !== document.body; p = p.parentElement) {
      const o = getComputedStyle(p).overflowX;
      if (o === 'auto' || o === 'scroll' || o === 'hidden') { bad = r.right > p.getBoundingClientRect().right + 1; break; }
    }
    if (bad) over.push(e.tagName.toLowerCase() + (e.className ? '.' + String(e.className).split(' ')[0] : ''));
  }
  return JSON.stringify({viewport: vw, scrollWidth: document.documentElement.scrollWidth,
                         scrollHeight: document.documentElement.scrollHeight,
                         banner: rect('#mbm-status-banner'), summary: rect('#mbm-summary'),
                         overflowing: over.slice(0, 20), overflowCount: over.length});
})()
"""


def find_chromium() -> str | None:
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


class WebSocket:
    """A minimal RFC 6455 client for a ``ws://127.0.0.1:port/path`` URL."""

    def __init__(self, url: str, timeout: float = 60.0):
        assert url.startswith("ws://")
        hostport, _, path = url[5:].partition("/")
        host, _, port = hostport.partition(":")
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
                          .encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            if not chunk:
                raise ConnectionError("websocket handshake: connection closed")
            head += chunk
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise ConnectionError(f"websocket handshake refused: {head[:200]!r}")

    def _recv_exact(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("websocket closed")
            buf += chunk
        return buf

    def _send_frame(self, opcode: int, payload: bytes) -> None:
        header = bytes([0x80 | opcode])
        n = len(payload)
        if n < 126:
            header += bytes([0x80 | n])
        elif n < 1 << 16:
            header += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            header += bytes([0x80 | 127]) + struct.pack("!Q", n)
        mask = os.urandom(4)
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def send(self, text: str) -> None:
        self._send_frame(0x1, text.encode())

    def recv(self) -> str:
        message = b""
        while True:
            b1, b2 = self._recv_exact(2)
            fin, opcode, n = b1 & 0x80, b1 & 0x0F, b2 & 0x7F
            if n == 126:
                n = struct.unpack("!H", self._recv_exact(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._recv_exact(8))[0]
            mask = self._recv_exact(4) if b2 & 0x80 else b""
            payload = self._recv_exact(n)
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            if opcode == 0x9:  # ping
                self._send_frame(0xA, payload)
                continue
            if opcode == 0x8:
                raise ConnectionError("websocket closed by the browser")
            message += payload
            if fin:
                return message.decode()

    def close(self) -> None:
        try:
            self._send_frame(0x8, b"")
        finally:
            self.sock.close()


@dataclass
class Rendered:
    url: str
    console_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    layout: dict[str, Any] = field(default_factory=dict)
    screenshots: list[Path] = field(default_factory=list)

    @property
    def network_requests(self) -> list[str]:
        """Requests other than the page itself and inline (data:) resources."""
        return [u for u in self.requests if u != self.url and not u.startswith("data:")]


class Browser:
    def __init__(self, executable: str, timeout: float = 90.0):
        self.profile = Path(tempfile.mkdtemp(prefix="mbm-chromium-"))
        self.timeout = timeout
        self.proc = subprocess.Popen([executable, *FLAGS, f"--user-data-dir={self.profile}",
                                      "--remote-debugging-port=0", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while not (port_file.is_file() and port_file.read_text().strip()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError("chromium did not start (no DevToolsActivePort)")
            time.sleep(0.1)
        self.port = int(port_file.read_text().split()[0])
        self._id = 0

    def _page_ws(self) -> WebSocket:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json/list", timeout=self.timeout) as r:
            targets = json.loads(r.read())
        page = next(t for t in targets if t.get("type") == "page")
        return WebSocket(page["webSocketDebuggerUrl"], timeout=self.timeout)

    def _call(self, ws: WebSocket, events: list[dict[str, Any]], method: str, **params: Any) -> dict[str, Any]:
        self._id += 1
        ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            msg = json.loads(ws.recv())
            if msg.get("id") == self._id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            events.append(msg)

    def _wait(self, ws: WebSocket, events: list[dict[str, Any]], method: str) -> None:
        deadline = time.monotonic() + self.timeout
        while not any(e.get("method") == method for e in events):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {method} within {self.timeout} s")
            events.append(json.loads(ws.recv()))

    def render(self, path: Path, shots: Path, name: str, width: int = 1280, height: int = 900) -> Rendered:
        """Load ``path`` at ``width`` x ``height``; screenshots (first screen, full page) into ``shots``."""
        url = path.resolve().as_uri()
        ws = self._page_ws()
        events: list[dict[str, Any]] = []
        try:
            for domain in ("Page", "Runtime", "Network", "Log"):
                self._call(ws, events, f"{domain}.enable")
            self._call(ws, events, "Emulation.setDeviceMetricsOverride", width=width, height=height,
                       deviceScaleFactor=1, mobile=False)
            self._call(ws, events, "Page.navigate", url=url)
            self._wait(ws, events, "Page.loadEventFired")
            self._call(ws, events, "Runtime.evaluate", expression="new Promise(r => setTimeout(r, 300))",
                       awaitPromise=True)
            layout = json.loads(self._call(ws, events, "Runtime.evaluate", expression=MEASURE,
                                           returnByValue=True)["result"]["value"])
            out = Rendered(url=url, layout=layout)
            shots.mkdir(parents=True, exist_ok=True)
            first = self._call(ws, events, "Page.captureScreenshot", format="png")
            full = self._call(ws, events, "Page.captureScreenshot", format="png", captureBeyondViewport=True,
                              clip={"x": 0, "y": 0, "width": width, "height": layout["scrollHeight"], "scale": 1})
            for suffix, shot in (("screen", first), ("full", full)):
                target = shots / f"{name}-{suffix}.png"
                target.write_bytes(base64.b64decode(shot["data"]))
                out.screenshots.append(target)
        finally:
            ws.close()
        for e in events:
            m, p = e.get("method"), e.get("params", {})
            if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.console_errors.append(" ".join(str(a.get("value", a.get("description", ""))) for a in p["args"]))
            elif m == "Runtime.exceptionThrown":
                out.console_errors.append(str(p.get("exceptionDetails", {}).get("text")))
            elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                out.console_errors.append(str(p["entry"].get("text")))
            elif m == "Network.requestWillBeSent":
                out.requests.append(p["request"]["url"])
        return out

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)
