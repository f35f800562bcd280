"""ECHONET Lite: frame codec, property value decoding, and the pychonet-based client."""
