"""A minimal RTSP server for tests: MJPEG over RTP (RFC 2435), interleaved in the RTSP TCP
connection (RFC 2326 section 10.12), on 127.0.0.1.

Enough of RTSP for FFmpeg's client: OPTIONS, DESCRIBE (one JPEG video track), SETUP (TCP
interleaved only: a UDP request gets 461 and FFmpeg asks again for TCP), PLAY, TEARDOWN. Each
frame's RTP timestamp is its index on a 90 kHz clock at ``fps``, so the stream has a clock of its
own that differs from the arrival times (frames are sent ``interval`` apart).
"""

from __future__ import annotations

import socket
import struct
import threading
import time

import cv2
import numpy as np

RTP_JPEG = 26  # the static payload type of JPEG
CLOCK_HZ = 90000


def jpeg_parts(jpeg: bytes) -> tuple[bytes, int, int, int, bytes]:
    """The quantisation tables (luma then chroma, 64 bytes each), width, height, RTP/JPEG type
    (0: 4:2:2, 1: 4:2:0) and the entropy-coded scan of a baseline JPEG with standard Huffman tables."""
    i, tables = 2, {}
    width = height = kind = 0
    while i < len(jpeg):
        marker = jpeg[i + 1]
        length = struct.unpack(">H", jpeg[i + 2:i + 4])[0]
        segment = jpeg[i + 4:i + 2 + length]
        if marker == 0xDB:  # DQT: one or more 8-bit tables
            for j in range(0, len(segment), 65):
                tables[segment[j] & 0x0F] = segment[j + 1:j + 65]
        elif marker == 0xC0:  # SOF0
            height, width = struct.unpack(">HH", segment[1:5])
            kind = 1 if segment[7] == 0x22 else 0
        elif marker == 0xDA:  # SOS: the scan runs to the EOI marker
            return tables[0] + tables[1], width, height, kind, jpeg[i + 2 + length:jpeg.rindex(b"\xff\xd9")]
        i += 2 + length
    raise ValueError("no scan in the JPEG")


def rtp_packets(jpeg: bytes, seq: int, stamp: int, mtu: int = 1400) -> tuple[list[bytes], int]:
    """The RTP packets of one frame (the last one marked) and the next sequence number."""
    tables, width, height, kind, scan = jpeg_parts(jpeg)
    packets, offset = [], 0
    while offset < len(scan):
        header = struct.pack(">BBBBBBBB", 0, offset >> 16 & 0xFF, offset >> 8 & 0xFF, offset & 0xFF, kind, 255,
                             width // 8, height // 8)
        if offset == 0:  # Q = 255: the tables travel in the first packet
            header += struct.pack(">BBH", 0, 0, len(tables)) + tables
        chunk = scan[offset:offset + mtu]
        offset += len(chunk)
        last = 0x80 if offset >= len(scan) else 0
        rtp = struct.pack(">BBHII", 0x80, last | RTP_JPEG, seq & 0xFFFF, stamp & 0xFFFFFFFF, 0x1234ABCD)
        packets.append(rtp + header + chunk)
        seq += 1
    return packets, seq


class RtspServer:
    """Session ``i`` plays ``sessions[i]`` (a list of images) and then closes; later sessions get 404."""

    def __init__(self, sessions: list[list[np.ndarray]], fps: float = 10.0, interval: float = 0.01) -> None:
        self.sessions = [[cv2.imencode(".jpg", im, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes() for im in s]
                         for s in sessions]
        self.fps, self.interval = fps, interval
        self.played = 0
        self._socket = socket.create_server(("127.0.0.1", 0))
        self.url = f"rtsp://127.0.0.1:{self._socket.getsockname()[1]}/cam"
        threading.Thread(target=self._accept, daemon=True).start()

    def stop(self) -> None:
        self._socket.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._socket.accept()
            except OSError:
                return
            threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    def _session(self, conn: socket.socket) -> None:
        reader = conn.makefile("rb")
        try:
            while True:
                lines = []
                while (line := reader.readline()) not in (b"\r\n", b"\n"):
                    if not line:
                        return
                    lines.append(line.decode().strip())
                method = lines[0].split()[0]
                headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])}
                reader.read(int(headers.get("content-length", 0)))
                status, extra, body = "200 OK", "", b""
                if method == "OPTIONS":
                    extra = "Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN\r\n"
                elif method == "DESCRIBE" and self.played >= len(self.sessions):
                    status = "404 Not Found"
                elif method == "DESCRIBE":
                    body = (b"v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=posetrack test\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n"
                            b"m=video 0 RTP/AVP 26\r\na=control:track0\r\n")
                    extra = (f"Content-Base: {self.url}/\r\nContent-Type: application/sdp\r\n"
                             f"Content-Length: {len(body)}\r\n")
                elif method == "SETUP" and "TCP" not in headers.get("transport", ""):
                    status = "461 Unsupported Transport"
                elif method == "SETUP":
                    extra = "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\nSession: 12345678\r\n"
                elif method == "PLAY":
                    extra = "Session: 12345678\r\n"
                conn.sendall(f"RTSP/1.0 {status}\r\nCSeq: {headers.get('cseq', '0')}\r\n{extra}\r\n".encode() + body)
                if method == "PLAY":
                    number, self.played = self.played, self.played + 1
                    self._play(conn, self.sessions[number])
                    return
                if method == "TEARDOWN":
                    return
        except OSError:  # the client went away
            pass
        finally:
            conn.close()

    def _play(self, conn: socket.socket, jpegs: list[bytes]) -> None:
        seq = 0
        for i, jpeg in enumerate(jpegs):
            packets, seq = rtp_packets(jpeg, seq, 5000 + round(i * CLOCK_HZ / self.fps))
            for packet in packets:
                conn.sendall(b"$\x00" + struct.pack(">H", len(packet)) + packet)
            time.sleep(self.interval)
