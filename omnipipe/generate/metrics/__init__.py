"""Generation metrics: samples judged against the real data (``metric`` components with ``role = "generation"``)."""
