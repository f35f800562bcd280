"""Realistic device streams for the demo and the benchmarks (``cityos simulate``).

Pure generators (:mod:`.hems`, :mod:`.vehicles`, :mod:`.health`) produce readings in the payload
contract; :mod:`.runner` publishes them through the broker with each device's own credentials.
"""
