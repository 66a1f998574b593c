"""MLLP (HL7v2 over TCP, minimal lower layer protocol): framing and the asyncio listener."""
