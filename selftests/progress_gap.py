#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Longest stall of a growing counter: progress_gap.py COUNTER_FILE STOP_FILE.

Reads COUNTER_FILE (for example an interface's rx_bytes) every 10 ms until STOP_FILE exists,
then prints the longest time, in ms, between two consecutive increases.
"""
import os
import sys
import time


def main():
    counter, stop = sys.argv[1], sys.argv[2]
    last_value = None
    last_growth = None
    longest = 0.0
    while not os.path.exists(stop):
        with open(counter) as f:
            value = int(f.read())
        now = time.monotonic()
        if last_value is not None and value != last_value:
            if last_growth is not None:
                longest = max(longest, now - last_growth)
            last_growth = now
        last_value = value
        time.sleep(0.01)
    print(int(longest * 1000))


if __name__ == "__main__":
    main()
