"""Recordings: recognised by content, duration read, stored under an unguessable name."""

from __future__ import annotations

import io
import math
import struct
import wave
from pathlib import Path

import pytest
from sqlmodel import select

from bulkcall_core import audio
from bulkcall_core.errors import AudioError, SettingsError
from bulkcall_core.models import Recording
from tests.ports import free_port

# -- sample files, built here so the tests need no encoder on the machine ---------------------


def make_wav(seconds: float = 1.0, *, rate: int = 8000, channels: int = 1) -> bytes:
    """A 16-bit PCM WAV holding a 440 Hz tone."""
    frames = int(seconds * rate)
    samples = (int(8000 * math.sin(2 * math.pi * 440 * i / rate)) for i in range(frames))
    pcm = b"".join(struct.pack("<h", s) * channels for s in samples)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm)
    return buffer.getvalue()


def make_mp3(seconds: float = 1.0) -> bytes:
    """An MPEG-1 layer III file, 128 kbps 44.1 kHz mono: frames of digital silence.

    A frame whose side information and main data are all zero is a valid frame that decodes
    to silence; 1152 samples each, 417 bytes each at this bit rate.
    """
    header = bytes([0xFF, 0xFB, 0x90, 0xC0])
    frame = header + bytes(417 - len(header))
    return frame * math.ceil(seconds * 44100 / 1152)


def make_aiff(seconds: float = 1.0, *, rate: int = 8000, form: bytes = b"AIFF") -> bytes:
    """A 16-bit mono AIFF (or AIFC 'NONE') of silence."""
    frames = int(seconds * rate)
    comm = struct.pack(">hLh", 1, frames, 16) + _extended(rate)
    if form == b"AIFC":
        comm += b"NONE" + b"\x0enot compressed\x00"
    ssnd = struct.pack(">LL", 0, 0) + bytes(frames * 2)
    chunks = _chunk(b"COMM", comm) + _chunk(b"SSND", ssnd)
    if form == b"AIFC":
        chunks = _chunk(b"FVER", struct.pack(">L", 0xA2805140)) + chunks
    return b"FORM" + struct.pack(">L", 4 + len(chunks)) + form + chunks


def _chunk(name: bytes, body: bytes) -> bytes:
    pad = b"\x00" if len(body) % 2 else b""
    return name + struct.pack(">L", len(body)) + body + pad


def _extended(value: int) -> bytes:
    # IEEE 754 80-bit extended, as AIFF stores its sample rate.
    exponent = value.bit_length() - 1
    mantissa = value << (63 - exponent)
    return struct.pack(">HQ", 16383 + exponent, mantissa)


# -- inspect_audio ---------------------------------------------------------------------------


def test_wav_is_recognised_with_duration_rate_and_channels() -> None:
    info = audio.inspect_audio(make_wav(2.5, rate=8000))
    assert (info.extension, info.content_type) == ("wav", "audio/wav")
    assert info.duration_seconds == pytest.approx(2.5)
    assert (info.sample_rate, info.channels, info.encoding) == (8000, 1, "PCM 16-bit")


def test_mp3_is_recognised_by_its_frame_sync_with_duration() -> None:
    info = audio.inspect_audio(make_mp3(3.0))
    assert (info.extension, info.content_type) == ("mp3", "audio/mpeg")
    assert info.duration_seconds == pytest.approx(3.0, abs=0.1)
    assert (info.sample_rate, info.channels) == (44100, 1)


def test_mp3_with_an_id3_tag_is_recognised() -> None:
    tag = b"ID3\x04\x00\x00\x00\x00\x00\x0a" + bytes(10)  # ID3v2.4 header + 10 bytes padding
    info = audio.inspect_audio(tag + make_mp3(1.0))
    assert info.extension == "mp3"
    assert info.duration_seconds == pytest.approx(1.0, abs=0.1)


def test_aiff_and_aifc_are_recognised_with_their_content_types() -> None:
    plain = audio.inspect_audio(make_aiff(2.0))
    compressed = audio.inspect_audio(make_aiff(2.0, form=b"AIFC"))
    assert (plain.extension, plain.content_type) == ("aiff", "audio/x-aiff")
    assert (compressed.extension, compressed.content_type) == ("aiff", "audio/x-aifc")
    assert plain.duration_seconds == pytest.approx(2.0)


def test_the_content_decides_not_the_name(tmp_path: Path) -> None:
    path = tmp_path / "message.wav"
    path.write_bytes(make_mp3(1.0))
    assert audio.inspect_audio(path).extension == "mp3"


def test_a_png_named_mp3_is_refused_saying_what_it_is() -> None:
    png = b"\x89PNG\r\n\x1a\n" + bytes(100)
    with pytest.raises(AudioError) as error:
        audio.inspect_audio(png, filename="m.mp3")
    message = str(error.value)
    assert message.startswith("m.mp3 is not audio")
    assert "a PNG image" in message and "MP3, WAV or AIFF" in message


@pytest.mark.parametrize(
    ("content", "looks_like"),
    [
        (b"OggS\x00\x02" + bytes(60), "Ogg audio"),
        (b"\x00\x00\x00\x20ftypM4A " + bytes(60), "MP4 / M4A"),
        (b"fLaC" + bytes(60), "FLAC"),
        (b"PK\x03\x04" + bytes(60), "ZIP archive"),
        (b"RIFF\x00\x00\x00\x00AVI LIST" + bytes(60), "AVI video"),
        (b"Name,Phone\nAnn,+14155550100\n", "a text file"),
        (b"\xff\xf1\x50\x80" + bytes(60), "AAC audio"),
        (bytes(range(7, 70)), "unknown kind"),
    ],
)
def test_other_formats_are_refused_by_name(content: bytes, looks_like: str) -> None:
    with pytest.raises(AudioError, match=looks_like):
        audio.inspect_audio(content, filename="x.wav")


def test_an_empty_file_is_refused() -> None:
    with pytest.raises(AudioError, match="empty"):
        audio.inspect_audio(b"", filename="blank.mp3")


def test_a_file_over_100_mb_is_refused_with_both_sizes(tmp_path: Path) -> None:
    path = tmp_path / "huge.wav"
    with path.open("wb") as handle:
        handle.truncate(audio.MAX_AUDIO_BYTES + 1)  # sparse: no 100 MB written
    with pytest.raises(AudioError) as error:
        audio.inspect_audio(path)
    assert "huge.wav is 100.0 MB" in str(error.value)
    assert "at most 100.0 MB" in str(error.value)


def test_a_wav_header_without_sound_is_refused() -> None:
    with pytest.raises(AudioError, match="no sound"):
        audio.inspect_audio(make_wav(0.0), filename="silent.wav")


def test_a_truncated_wav_is_refused_as_damaged() -> None:
    with pytest.raises(AudioError, match="damaged"):
        audio.inspect_audio(make_wav(1.0)[:30], filename="cut.wav")


def test_junk_after_an_mp3_sync_word_is_refused_as_damaged() -> None:
    junk = bytes([0xFF, 0xFB, 0x90, 0xC0]) + bytes(range(256)) * 4
    with pytest.raises(AudioError, match="damaged"):
        audio.inspect_audio(junk, filename="bad.mp3")


# -- recording_hints -------------------------------------------------------------------------


def test_phone_quality_short_message_gets_no_hint() -> None:
    assert audio.recording_hints(audio.inspect_audio(make_wav(20.0, rate=8000))) == []


def test_stereo_high_rate_and_long_messages_get_hints() -> None:
    info = audio.AudioInfo("wav", "audio/wav", 300.0, 1000, 44100, 2, "PCM 16-bit")
    hints = " ".join(audio.recording_hints(info))
    assert "44.1 kHz stereo" in hints and "8 kHz mono" in hints
    assert "5.0 minutes" in hints


def test_a_very_short_message_gets_a_hint() -> None:
    hints = audio.recording_hints(audio.inspect_audio(make_wav(0.5)))
    assert any("only 0.5 s" in hint for hint in hints)


# -- store_recording -------------------------------------------------------------------------


def test_store_keeps_the_file_under_an_unguessable_token(session, settings_factory) -> None:  # type: ignore[no-untyped-def]
    settings = settings_factory()
    data = make_mp3(2.0)
    recording = audio.store_recording(
        session=session, settings=settings, data=data, filename="Hello.wav"
    )
    session.commit()
    stored = audio.recording_path(recording, settings)
    assert stored == settings.recordings_dir / f"{recording.token}.mp3"
    assert stored.read_bytes() == data
    assert len(recording.token) >= 43  # 32 random bytes, url-safe base64
    assert (recording.filename, recording.extension) == ("Hello.wav", "mp3")
    assert recording.duration_seconds == pytest.approx(2.0, abs=0.1)
    assert recording.size_bytes == len(data)


def test_the_same_content_twice_reuses_one_recording(session, settings_factory) -> None:  # type: ignore[no-untyped-def]
    settings = settings_factory()
    first = audio.store_recording(
        session=session, settings=settings, data=make_wav(1.0), filename="a.wav"
    )
    second = audio.store_recording(
        session=session, settings=settings, data=make_wav(1.0), filename="b.wav"
    )
    assert first.id == second.id
    assert len(list(session.exec(select(Recording)))) == 1
    assert len(list(settings.recordings_dir.iterdir())) == 1


def test_store_reads_from_a_path(session, settings_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings = settings_factory()
    path = tmp_path / "upload.aiff"
    path.write_bytes(make_aiff(1.0))
    recording = audio.store_recording(
        session=session, settings=settings, data=path, filename=path.name
    )
    assert audio.recording_path(recording, settings).read_bytes() == path.read_bytes()


def test_refused_audio_stores_nothing(session, settings_factory) -> None:  # type: ignore[no-untyped-def]
    settings = settings_factory()
    with pytest.raises(AudioError):
        audio.store_recording(session=session, settings=settings, data=b"%PDF-1.7", filename="x")
    assert list(session.exec(select(Recording))) == []
    assert not settings.recordings_dir.exists() or not any(settings.recordings_dir.iterdir())


# -- recording_url ---------------------------------------------------------------------------


def test_recording_url_is_under_public_base_url(settings_factory) -> None:  # type: ignore[no-untyped-def]
    settings = settings_factory(public_base_url="https://calls.example.com/")
    recording = Recording(
        token="tok", filename="a", extension="wav", content_type="audio/wav",
        size_bytes=1, duration_seconds=1.0, sha256="0",
    )  # fmt: skip
    assert audio.recording_url(recording, settings) == "https://calls.example.com/media/tok.wav"


def test_recording_url_without_public_base_url_says_what_to_set(settings_factory) -> None:  # type: ignore[no-untyped-def]
    settings = settings_factory(public_base_url=None, webhook_port=8600)
    recording = Recording(
        token="tok", filename="a", extension="wav", content_type="audio/wav",
        size_bytes=1, duration_seconds=1.0, sha256="0",
    )  # fmt: skip
    with pytest.raises(SettingsError) as error:
        audio.recording_url(recording, settings)
    assert "Set PUBLIC_BASE_URL" in str(error.value) and "port 8600" in str(error.value)
    assert error.value.field == "PUBLIC_BASE_URL"


# -- check_public_url: against a real HTTP server ----------------------------------------------


def test_check_public_url_reports_a_refused_connection() -> None:
    port = free_port()  # nothing listens there
    check = audio.check_public_url(f"http://127.0.0.1:{port}/media/x.mp3", timeout=3)
    assert not check.ok and check.status is None
    assert "refused" in check.message


def test_check_public_url_reports_an_unresolvable_name() -> None:
    check = audio.check_public_url("http://no-such-host.invalid/media/x.mp3", timeout=3)
    assert not check.ok
    assert "does not resolve" in check.message


def test_check_public_url_reports_wrong_content_type_and_404(tiny_server) -> None:  # type: ignore[no-untyped-def]
    wrong = audio.check_public_url(tiny_server + "/text", timeout=3)
    missing = audio.check_public_url(tiny_server + "/missing", timeout=3)
    assert not wrong.ok and wrong.content_type == "text/html"
    assert "Twilio refuses" in wrong.message
    assert not missing.ok and missing.status == 404 and "not found" in missing.message


def test_check_public_url_accepts_served_audio_and_notes_a_private_address(tiny_server) -> None:  # type: ignore[no-untyped-def]
    check = audio.check_public_url(tiny_server + "/audio", timeout=3)
    assert check.ok and check.status == 200 and check.content_type == "audio/mpeg"
    assert "private address" in check.message


def test_check_public_url_refuses_audio_type_with_other_content(tiny_server) -> None:  # type: ignore[no-untyped-def]
    check = audio.check_public_url(tiny_server + "/fake-audio", timeout=3)
    assert not check.ok
    assert "not audio" in check.message and "web page" in check.message


@pytest.fixture
def tiny_server():  # type: ignore[no-untyped-def]
    """A stdlib HTTP server on loopback answering a few fixed paths."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    mp3 = make_mp3(1.0)
    routes = {
        "/text": ("text/html", b"<html>hello</html>"),
        "/audio": ("audio/mpeg", mp3),
        "/fake-audio": ("audio/mpeg", b"<!DOCTYPE html><html>login</html>"),
    }

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            if self.path not in routes:
                self.send_error(404)
                return
            content_type, body = routes[self.path]
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_check_public_url_reports_an_untrusted_tls_certificate(tmp_path: Path) -> None:
    """A self-signed certificate is what a half-configured proxy serves; Twilio refuses it."""
    import datetime
    import ssl
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    (tmp_path / "cert.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        check = audio.check_public_url(f"https://localhost:{port}/media/x.mp3", timeout=5)
    finally:
        server.shutdown()
        server.server_close()
    assert not check.ok and check.status is None
    assert "TLS" in check.message and "certificate" in check.message


def test_a_missing_path_is_an_audio_error(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match="gone.mp3 cannot be read"):
        audio.inspect_audio(tmp_path / "gone.mp3")


def test_a_large_mp3_is_not_told_to_become_an_mp3() -> None:
    big_mp3 = audio.AudioInfo("mp3", "audio/mpeg", 60.0, 20 * 1024 * 1024, 8000, 1, "MPEG")
    big_wav = audio.AudioInfo("wav", "audio/wav", 60.0, 20 * 1024 * 1024, 8000, 1, "PCM 16-bit")
    assert "20.0 MB" in audio.recording_hints(big_mp3)[0]
    assert "An MP3" not in audio.recording_hints(big_mp3)[0]
    assert "An MP3" in audio.recording_hints(big_wav)[0]


def test_a_float_wav_gets_an_encoding_hint() -> None:
    info = audio.AudioInfo("wav", "audio/wav", 10.0, 1000, 8000, 1, "32-bit float")
    assert any("32-bit float" in hint for hint in audio.recording_hints(info))
