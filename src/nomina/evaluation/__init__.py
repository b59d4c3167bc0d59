"""Measuring Nomina's accuracy on labelled photos (`nomina evaluate`)."""

from __future__ import annotations
