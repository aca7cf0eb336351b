"""The table of `models/kernels/exp.rs`: for i in 0..32, the bits of 2^(i/32) rounded to the
nearest double, less i << 47. 2^(i/32) is computed in exact decimal arithmetic (60 digits) and
rounded once, so the table does not depend on any C library.

    python3 bench/reference/exp_table.py
"""
from decimal import Decimal, getcontext
from fractions import Fraction
import struct

getcontext().prec = 60


def nearest_double(value: Decimal) -> float:
    """The double nearest to `value`: Python rounds an exact fraction once, ties to even."""
    return float(Fraction(value))


for i in range(32):
    power = Decimal(2) ** (Decimal(i) / Decimal(32))
    bits = struct.unpack("<Q", struct.pack("<d", nearest_double(power)))[0]
    print(f"0x{(bits - (i << 47)) % (1 << 64):016x},")
