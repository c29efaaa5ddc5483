"""A store's failures as one line each, naming the URL (never credentials), and telling apart
what the file is to blame for (ModelError: missing, denied) from what a retry may mend
(StoreError: timeouts, refused or closed connections, DNS, TLS, cut-short responses)."""
from __future__ import annotations

import os

from ..errors import ModelError, StoreError
from .urls import shown


class IgnoresRange(Exception):
    """The server answered a range request with the whole file."""


def timeout() -> float:
    """Seconds a store may stay silent (connecting, or between bytes): LSTMTOOL_REMOTE_TIMEOUT."""
    try:
        return float(os.environ.get("LSTMTOOL_REMOTE_TIMEOUT", "60"))
    except ValueError:
        return 60.0


def call(url, fn, *args, **kwargs):
    """Run a store operation; its failures become one line naming the URL (never credentials)."""
    try:
        return fn(*args, **kwargs)
    except FileNotFoundError as e:
        # fsspec's HTTP info reports every failure as not found: the cause tells
        if _status(e) == 403:
            raise ModelError(f"{shown(url)}: access denied (403): check the store's credentials "
                             "(AWS_* / GOOGLE_APPLICATION_CREDENTIALS / HF_TOKEN)") from None
        if _timed_out(e):
            raise StoreError(f"{shown(url)}: the store did not answer in time "
                             f"(LSTMTOOL_REMOTE_TIMEOUT={timeout():g} s)") from None
        failure = _connection_failure(e)
        if failure:
            raise StoreError(f"{shown(url)}: {failure}") from None
        raise ModelError(f"{shown(url)}: no such remote file (404)") from None
    except PermissionError:
        raise ModelError(f"{shown(url)}: access denied (403): check the store's credentials "
                         "(AWS_* / GOOGLE_APPLICATION_CREDENTIALS / HF_TOKEN)") from None
    except ValueError as e:
        if "range" in str(e).lower():
            raise IgnoresRange() from None
        raise ModelError(f"{shown(url)}: {_reason(e)}") from None
    except (TimeoutError, OSError) as e:
        raise StoreError(f"{shown(url)}: {_connection_failure(e) or _reason(e)}") from None
    except Exception as e:  # aiohttp and botocore errors have their own hierarchies
        name = type(e).__name__
        if _timed_out(e):
            raise StoreError(f"{shown(url)}: the store did not answer in time "
                             f"(LSTMTOOL_REMOTE_TIMEOUT={timeout():g} s)") from None
        failure = _connection_failure(e)
        if failure:
            raise StoreError(f"{shown(url)}: {failure}") from None
        if "Payload" in name or "ContentLength" in str(e):
            raise StoreError(f"{shown(url)}: the response was cut short (truncated); try again") from None
        response = getattr(e, "response", None)
        status = getattr(e, "status", None) or getattr(e, "code", None) or getattr(response, "status_code", None)
        if status == 403:
            raise ModelError(f"{shown(url)}: access denied (403): check the store's credentials") from None
        if status == 404:
            raise ModelError(f"{shown(url)}: no such remote file (404)") from None
        if name.startswith(("Client", "Server", "Botocore", "NoCredentials", "HfHub", "Http")) or status:
            raise ModelError(f"{shown(url)}: {_reason(e)}") from None
        raise


def _timed_out(e):
    seen = 0
    while e is not None and seen < 10:
        if isinstance(e, TimeoutError) or "Timeout" in type(e).__name__:
            return True
        e, seen = e.__cause__ or e.__context__, seen + 1
    return False


def _connection_failure(e):
    """What went wrong below HTTP (refused, closed, DNS, TLS), from `e`'s chain; None if nothing did.
    fsspec's HTTP filesystem reports these as FileNotFoundError: the cause tells them apart."""
    import socket
    import ssl

    chain = []
    while e is not None and len(chain) < 10:
        chain.append(e)
        e = e.__cause__ or e.__context__
    named = lambda *names: any(type(c).__name__ in names for c in chain)  # noqa: E731
    if any(isinstance(c, ssl.SSLError) for c in chain) or named("ClientSSLError", "ClientConnectorSSLError",
                                                                  "ClientConnectorCertificateError"):
        return f"the TLS handshake failed ({_reason(chain[-1])})"
    if any(isinstance(c, ConnectionRefusedError) for c in chain):
        return "connection refused (nothing is listening there)"
    if any(isinstance(c, socket.gaierror) or "Name or service not known" in str(c) for c in chain):
        return "the host name does not resolve (DNS)"
    if any(isinstance(c, (ConnectionResetError, BrokenPipeError)) for c in chain) or \
            named("ServerDisconnectedError", "RemoteDisconnected", "IncompleteRead"):
        return "the server closed the connection without answering"
    if named("ClientConnectorError", "EndpointConnectionError", "ConnectionError"):
        return f"cannot connect ({_reason(chain[0])})"
    return None


def _status(e):
    """The HTTP status somewhere in `e`'s chain of causes, if any."""
    seen = 0
    while e is not None and seen < 10:
        response = getattr(e, "response", None)
        status = getattr(e, "status", None) or getattr(response, "status_code", None)
        if isinstance(status, int):
            return status
        e, seen = e.__cause__ or e.__context__, seen + 1
    return None


def _reason(e):
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return shown(text) if "://" in text else text
