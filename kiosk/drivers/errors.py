"""Typed errors raised by the serial device drivers; messages name the device and say what went wrong."""

from __future__ import annotations


class DeviceError(Exception):
    """Base class of every error a device driver raises to the daemon."""


class DeviceTimeout(DeviceError):
    """The device did not answer in time, even after the configured retries."""


class DeviceUnavailable(DeviceError):
    """The device's port is missing, unplugged or not open yet."""


class ProtocolError(DeviceError):
    """The device answered, but with something the protocol does not allow."""


class CodecError(ValueError):
    """Bytes that do not form a valid frame, or a frame that does not form a valid message."""
