"""aiortc peer connections and the media relay between a session's participants."""
