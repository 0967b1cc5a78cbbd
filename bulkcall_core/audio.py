"""Recordings: what a file really is, how long it plays, where it is kept, where Twilio fetches it.

A recording is accepted by its content (magic bytes), never by its name: MP3, WAV or AIFF, the
formats Twilio's <Play> fetches (its documented Content-Types: audio/mpeg, audio/wav,
audio/wave, audio/x-wav, audio/aiff, audio/x-aiff, audio/x-aifc, plus GSM and u-law).
Duration and stream details come from `mutagen` (pure Python, reads MP3 Xing/VBRI headers, WAV
and AIFF; the stdlib has no MP3 reader and `aifc` is gone in Python 3.13).

Files are stored as `<token>.<ext>` under `settings.recordings_dir`, the token being 32 random
bytes: the URL is the only secret that guards a message, so it cannot be guessed or listed.
"""

from __future__ import annotations

import hashlib
import io
import ipaddress
import os
import secrets
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit

import requests
from mutagen import MutagenError, StreamInfo
from mutagen.aiff import AIFF
from mutagen.mp3 import MP3
from mutagen.wave import WAVE
from sqlmodel import Session, select

from bulkcall_core.errors import AudioError, SettingsError
from bulkcall_core.models import Recording
from bulkcall_core.settings import Settings

# The limit, in the unit Streamlit's server.maxUploadSize uses (MiB), so that an upload
# the dashboard lets through is never refused here.
MAX_AUDIO_BYTES = 100 * 1024 * 1024
# Bytes read to recognise a file; every signature below fits in it.
SNIFF_BYTES = 64
# Twilio bills outbound calls per started minute and listeners drop off quickly; past this a
# hint says so.
LONG_MESSAGE_SECONDS = 120.0
# Shorter than this is more likely a wrong file (a click, a test) than a message.
SHORT_MESSAGE_SECONDS = 2.0
# Phone calls carry 8 kHz mono (G.711); anything richer is converted by Twilio.
PHONE_SAMPLE_RATE = 8000
# Twilio downloads the file before the first call plays it; above this size the first calls
# may hear a pause. 10 MB is about 10 minutes of 128 kbps MP3.
LARGE_FILE_BYTES = 10 * 1024 * 1024
ACCEPTED = "upload an MP3, WAV or AIFF file"
# Content-Type for each accepted format: all in Twilio's documented <Play> list.
CONTENT_TYPES = {"mp3": "audio/mpeg", "wav": "audio/wav", "aiff": "audio/x-aiff"}
AIFC_CONTENT_TYPE = "audio/x-aifc"
# Content-Types Twilio's <Play> accepts, for checking a served URL.
TWILIO_AUDIO_TYPES = frozenset(
    {
        "audio/mpeg",
        "audio/wav",
        "audio/wave",
        "audio/x-wav",
        "audio/aiff",
        "audio/x-aifc",
        "audio/x-aiff",
        "audio/x-gsm",
        "audio/gsm",
        "audio/ulaw",
    }
)
# WAV format tags (the fmt chunk's first field) and how a person would call them.
WAV_ENCODINGS = {1: "PCM", 3: "32-bit float", 6: "A-law", 7: "u-law", 0xFFFE: "PCM (extensible)"}
# How much of a served file the URL check reads: enough to recognise it.
CHECK_READ_BYTES = 4096


@dataclass(frozen=True)
class AudioInfo:
    """What an accepted recording is: format, Content-Type and how long it plays."""

    extension: str  # mp3, wav or aiff
    content_type: str
    duration_seconds: float
    size_bytes: int
    sample_rate: int | None = None
    channels: int | None = None
    encoding: str | None = None  # e.g. "PCM 16-bit", "u-law", "MPEG-1 layer III 128 kbps"


@dataclass(frozen=True)
class UrlCheck:
    """The result of fetching an audio URL the way Twilio would."""

    ok: bool
    status: int | None
    content_type: str | None
    message: str


def inspect_audio(
    data: bytes | os.PathLike[str] | str, *, filename: str | None = None
) -> AudioInfo:
    """Recognise a recording by its content and read its duration.

    `data` is the file's bytes or a path; `filename` (default: the path's name) only names the
    file in messages. Returns an AudioInfo. Raises AudioError when the file is too large, empty,
    not MP3/WAV/AIFF (naming what it looks like), corrupt, or plays for no time at all.
    """
    if isinstance(data, bytes | bytearray | memoryview):
        name = filename or "The file"
        size = len(data)
        _check_size(name, size)
        return _inspect_stream(io.BytesIO(bytes(data)), name=name, size=size)
    path = Path(data)
    name = filename or path.name
    try:
        size = path.stat().st_size
        _check_size(name, size)
        with path.open("rb") as handle:
            return _inspect_stream(handle, name=name, size=size)
    except OSError as exc:
        raise AudioError(f"{name} cannot be read ({exc.strerror}); upload it again") from None


def _check_size(name: str, size: int) -> None:
    if size == 0:
        raise AudioError(f"{name} is empty (0 bytes); {ACCEPTED}", field="audio")
    if size > MAX_AUDIO_BYTES:
        raise AudioError(
            f"{name} is {_megabytes(size)}; recordings may be at most "
            f"{_megabytes(MAX_AUDIO_BYTES)}: shorten it or save it as MP3 or 8 kHz mono WAV",
            field="audio",
        )


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


def _inspect_stream(stream: BinaryIO, *, name: str, size: int) -> AudioInfo:
    head = stream.read(SNIFF_BYTES)
    stream.seek(0)
    kind = sniff_audio(head)
    if kind is None:
        raise AudioError(
            f"{name} is not audio Twilio can play: it looks like {describe_content(head)}; "
            f"{ACCEPTED}",
            field="audio",
        )
    reader = {"mp3": _read_mp3, "wav": _read_wav, "aiff": _read_aiff}[kind]
    try:
        info = reader(stream, size)
    except (MutagenError, EOFError, ValueError, ZeroDivisionError) as exc:
        raise AudioError(
            f"{name} starts like {kind.upper()} audio but cannot be read ({exc}); it may be "
            f"truncated or damaged: export it again and {ACCEPTED}",
            field="audio",
        ) from None
    if not info.duration_seconds or info.duration_seconds <= 0:
        raise AudioError(
            f"{name} is {kind.upper()} audio with no sound in it (0 seconds); {ACCEPTED} "
            "that contains the message",
            field="audio",
        )
    return info


def sniff_audio(head: bytes) -> str | None:
    """'mp3', 'wav' or 'aiff' when the first bytes of a file are one of them, else None."""
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "aiff"
    if head[:3] == b"ID3" or _is_mp3_frame_header(head):
        return "mp3"
    return None


def _is_mp3_frame_header(head: bytes) -> bool:
    # 11 sync bits, then a version that exists (not 01) and layer III (01).
    if len(head) < 4 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return False
    return (head[1] >> 3) & 0x03 != 0x01 and (head[1] >> 1) & 0x03 == 0x01


# (signature test, what a person would call it), first match wins.
_LOOKALIKES: tuple[tuple[tuple[int, bytes], str], ...] = (
    ((0, b"\x89PNG"), "a PNG image"),
    ((0, b"\xff\xd8\xff"), "a JPEG image"),
    ((0, b"GIF8"), "a GIF image"),
    ((0, b"%PDF"), "a PDF document"),
    ((0, b"PK\x03\x04"), "a ZIP archive (or an Office document such as .xlsx or .docx)"),
    ((0, b"\xd0\xcf\x11\xe0"), "an old Office document (.xls, .doc)"),
    ((0, b"OggS"), "Ogg audio (Vorbis or Opus), which Twilio does not play"),
    ((0, b"fLaC"), "FLAC audio, which Twilio does not play"),
    ((4, b"ftyp"), "an MP4 / M4A / AAC file, which Twilio does not play"),
    ((0, b"\x1a\x45\xdf\xa3"), "a WebM / Matroska file"),
    ((0, b"#!AMR"), "AMR audio, which Twilio does not play"),
    ((0, b"caff"), "Core Audio (CAF) audio, which Twilio does not play"),
    ((0, b"\x30\x26\xb2\x75"), "a Windows Media (WMA/WMV) file"),
    ((8, b"AVI "), "an AVI video"),
    ((8, b"WEBP"), "a WebP image"),
)


def describe_content(head: bytes) -> str:
    """What the first bytes of a non-audio file look like, in words ("a PNG image")."""
    for (offset, magic), label in _LOOKALIKES:
        if head[offset : offset + len(magic)] == magic:
            return label
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xF6 == 0xF0:
        return "AAC audio (ADTS), which Twilio does not play"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        return "MPEG audio of another layer (MP1/MP2), which Twilio does not play"
    lowered = head.lstrip().lower()
    if lowered.startswith((b"<!doctype html", b"<html")):
        return "a web page (HTML)"
    if _is_text(head):
        return "a text file"
    return "binary data of an unknown kind"


def _is_text(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(ch.isprintable() or ch in "\r\n\t" for ch in text)


def _read_mp3(stream: BinaryIO, size: int) -> AudioInfo:
    info = MP3(stream).info
    if info.sketchy or info.layer != 3:
        raise ValueError("no run of valid MP3 frames found")
    encoding = f"MPEG-{info.version:g} layer III {info.bitrate // 1000} kbps"
    return _audio_info("mp3", CONTENT_TYPES["mp3"], info, size, encoding)


def _read_wav(stream: BinaryIO, size: int) -> AudioInfo:
    info = WAVE(stream).info
    encoding = WAV_ENCODINGS.get(info.audio_format, f"format tag {info.audio_format}")
    if info.audio_format in (1, 0xFFFE):
        encoding = f"{encoding} {info.bits_per_sample}-bit"
    return _audio_info("wav", CONTENT_TYPES["wav"], info, size, encoding)


def _read_aiff(stream: BinaryIO, size: int) -> AudioInfo:
    is_aifc = stream.read(12)[8:12] == b"AIFC"
    stream.seek(0)
    info = AIFF(stream).info
    content_type = AIFC_CONTENT_TYPE if is_aifc else CONTENT_TYPES["aiff"]
    encoding = ("AIFF-C " if is_aifc else "PCM ") + f"{info.bits_per_sample}-bit"
    return _audio_info("aiff", content_type, info, size, encoding)


def _audio_info(
    extension: str, content_type: str, info: StreamInfo, size: int, encoding: str
) -> AudioInfo:
    # mutagen's stream info, checked: a header without rate or channels describes no sound.
    if not info.sample_rate or not info.channels:
        raise ValueError("the header gives no sample rate or channel count")
    return AudioInfo(
        extension=extension,
        content_type=content_type,
        duration_seconds=float(info.length),
        size_bytes=size,
        sample_rate=int(info.sample_rate),
        channels=int(info.channels),
        encoding=encoding,
    )


def recording_hints(info: AudioInfo) -> list[str]:
    """Best-practice advice about an accepted recording, for the dashboard (may be empty).

    Only what can be known from the file's header: length, size, sample rate, channels and
    encoding. Silence or loudness would need decoding MP3, which this product does not do.
    """
    checks = (_long_hint, _short_hint, _quality_hint, _size_hint, _encoding_hint)
    return [hint for check in checks if (hint := check(info)) is not None]


def _long_hint(info: AudioInfo) -> str | None:
    if info.duration_seconds <= LONG_MESSAGE_SECONDS:
        return None
    return (
        f"The message lasts {info.duration_seconds / 60:.1f} minutes. Twilio bills each call "
        "per started minute and listeners rarely stay long: 30 to 60 seconds works best."
    )


def _short_hint(info: AudioInfo) -> str | None:
    if info.duration_seconds >= SHORT_MESSAGE_SECONDS:
        return None
    return f"The message lasts only {info.duration_seconds:.1f} s: check it is the right file."


def _quality_hint(info: AudioInfo) -> str | None:
    rate, channels = info.sample_rate or 0, info.channels or 1
    if rate <= PHONE_SAMPLE_RATE and channels == 1:
        return None
    layout = "stereo" if channels > 1 else "mono"
    return (
        f"The file is {rate / 1000:g} kHz {layout}; a phone call carries 8 kHz mono, so "
        "Twilio converts it. It plays fine; 8 kHz mono would sound the same on the phone "
        "and make a smaller file."
    )


def _size_hint(info: AudioInfo) -> str | None:
    if info.size_bytes <= LARGE_FILE_BYTES:
        return None
    smaller = "" if info.extension == "mp3" else " An MP3 of it would be much smaller."
    return (
        f"The file is {_megabytes(info.size_bytes)}: Twilio downloads it before the first "
        f"call plays it, so the first calls may start with a pause.{smaller}"
    )


def _encoding_hint(info: AudioInfo) -> str | None:
    if info.extension != "wav" or not info.encoding:
        return None
    if info.encoding.startswith(("PCM", "u-law")):
        return None
    return (
        f"This WAV is encoded as {info.encoding}; 16-bit PCM WAV or MP3 plays most "
        "reliably on phones."
    )


def store_recording(
    *, session: Session, settings: Settings, data: bytes | os.PathLike[str] | str, filename: str
) -> Recording:
    """Check an uploaded recording and keep it under `settings.recordings_dir`.

    `data` is the upload's bytes or a path to it; `filename` is the name it was uploaded under
    (for display only: the content decides the format). The same content uploaded again returns
    the Recording already stored (same URL, so Twilio's cache stays valid) instead of a copy.
    Adds the new Recording to `session` and flushes it; the caller commits. Raises AudioError.
    """
    source: bytes | Path = bytes(data) if isinstance(data, bytes | bytearray) else Path(data)
    info = inspect_audio(source, filename=filename)
    digest = _sha256(source)
    existing = _stored_copy(session, settings, digest)
    if existing is not None:
        return existing
    token = secrets.token_urlsafe(32)
    directory = settings.recordings_dir
    _write_atomically(source, directory / f"{token}.{info.extension}")
    recording = Recording(
        token=token,
        filename=Path(filename).name[:255] or "recording",
        extension=info.extension,
        content_type=info.content_type,
        size_bytes=info.size_bytes,
        duration_seconds=info.duration_seconds,
        sha256=digest,
    )
    session.add(recording)
    session.flush()
    return recording


def _sha256(source: bytes | Path) -> str:
    if isinstance(source, bytes):
        return hashlib.sha256(source).hexdigest()
    digest = hashlib.sha256()
    with source.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _stored_copy(session: Session, settings: Settings, digest: str) -> Recording | None:
    for recording in session.exec(select(Recording).where(Recording.sha256 == digest)):
        if recording_path(recording, settings).is_file():
            return recording
    return None


def _write_atomically(source: bytes | Path, target: Path) -> None:
    # Write beside the target, then rename: a reader never sees half a file.
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
    try:
        with os.fdopen(fd, "wb") as out:
            if isinstance(source, bytes):
                out.write(source)
            else:
                with source.open("rb") as handle:
                    for chunk in iter(lambda: handle.read(1024 * 1024), b""):
                        out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp_name, target)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def recording_path(recording: Recording, settings: Settings) -> Path:
    """Where a stored recording's file lives."""
    return settings.recordings_dir / f"{recording.token}.{recording.extension}"


def public_base_url(settings: Settings) -> str:
    """PUBLIC_BASE_URL: where Twilio reaches this product's web hooks server (audio, callbacks).

    Raises SettingsError saying what to set when it is unset.
    """
    if not settings.public_base_url:
        raise SettingsError(
            "Set PUBLIC_BASE_URL to the internet address at which Twilio reaches this server's "
            f"web hooks (port {settings.webhook_port}), e.g. https://calls.example.com; see "
            "README: reverse proxy or tunnel",
            field="PUBLIC_BASE_URL",
        )
    return settings.public_base_url


def recording_url(recording: Recording, settings: Settings) -> str:
    """The unguessable public URL from which Twilio fetches `recording`.

    Raises SettingsError when PUBLIC_BASE_URL is unset.
    """
    return f"{public_base_url(settings)}/media/{recording.token}.{recording.extension}"


def check_public_url(url: str, *, timeout: float = 10) -> UrlCheck:
    """Fetch an audio URL as Twilio would (GET, then a Range request) and say what is wrong.

    Returns UrlCheck(ok=True, ...) when the URL answers 200 with a Content-Type Twilio plays
    and content that is MP3/WAV/AIFF; otherwise ok=False and a message naming the problem
    (DNS, refused, timeout, TLS, HTTP status, Content-Type, content). Never raises.
    """
    try:
        response = requests.get(url, timeout=timeout, stream=True, allow_redirects=True)
    except requests.exceptions.RequestException as exc:
        return UrlCheck(False, None, None, _network_problem(url, exc))
    with response:
        content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        head = response.raw.read(CHECK_READ_BYTES, decode_content=True)
    status = response.status_code
    problem = _response_problem(status, content_type, head)
    if problem:
        return UrlCheck(False, status, content_type or None, f"{url}: {problem}")
    message = f"{url} serves {content_type} audio as Twilio needs it"
    message += _range_note(url, timeout)
    message += _private_address_note(url)
    return UrlCheck(True, status, content_type, message)


def _network_problem(url: str, exc: requests.exceptions.RequestException) -> str:
    host = urlsplit(url).hostname or url
    text = str(exc)
    if isinstance(exc, requests.exceptions.SSLError):
        return (
            f"{url}: the TLS (https) certificate is not accepted ({_short(text)}); Twilio "
            "needs a valid certificate from a public authority"
        )
    if isinstance(exc, requests.exceptions.Timeout):
        return f"{url}: no answer within the time limit; check the tunnel or reverse proxy"
    if isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema):
        return f"{url} is not a valid address ({_short(text)})"
    if "NameResolution" in text or "Name or service not known" in text or _no_dns(host):
        return f"{url}: the name {host} does not resolve (DNS); check PUBLIC_BASE_URL"
    if "refused" in text.lower():
        return (
            f"{url}: connection refused by {host}; nothing listens there (is the web hooks "
            "server or the tunnel running?)"
        )
    return f"{url}: cannot connect ({_short(text)})"


def _no_dns(host: str) -> bool:
    try:
        socket.getaddrinfo(host, None)
    except OSError:
        return True
    return False


def _short(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _response_problem(status: int, content_type: str, head: bytes) -> str | None:
    if status == 404:
        return "not found (404): the recording is not on this server; upload it again"
    if status != 200:
        return f"the server answered HTTP {status} instead of 200 with the audio file"
    if content_type not in TWILIO_AUDIO_TYPES:
        return (
            f"served as {content_type or 'no Content-Type'}, which Twilio refuses (error "
            "12300/13420): it must be an audio type such as audio/mpeg or audio/wav; is "
            "PUBLIC_BASE_URL pointing at the web hooks server?"
        )
    if sniff_audio(head[:SNIFF_BYTES]) is None:
        return f"the content is not audio: it looks like {describe_content(head[:SNIFF_BYTES])}"
    return None


def _range_note(url: str, timeout: float) -> str:
    try:
        response = requests.get(url, headers={"Range": "bytes=0-1023"}, timeout=timeout)
    except requests.exceptions.RequestException:
        return "; a second request (with Range) failed: the connection is unreliable"
    if response.status_code == 206:
        return ", with range requests"
    return (
        f"; range requests are not supported (HTTP {response.status_code}), which Twilio tolerates"
    )


def _private_address_note(url: str) -> str:
    host = urlsplit(url).hostname or ""
    try:
        address = ipaddress.ip_address(socket.gethostbyname(host))
    except (OSError, ValueError):
        return ""
    if address.is_loopback or address.is_private or address.is_link_local:
        return (
            f". Note: {host} is a private address ({address}); it works from this machine "
            "but Twilio on the internet cannot reach it"
        )
    return ""
