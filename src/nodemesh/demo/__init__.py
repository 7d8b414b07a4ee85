"""The chat demo: N local nodes, each serving a page whose messages cross nodes through
PubSub topic ``room:lobby`` (``nodemesh demo``; ``docs/demo.md``)."""

from nodemesh.demo.chat import ChatNode
from nodemesh.demo.config import TOPIC, DemoConfig
from nodemesh.demo.runner import run_demo

__all__ = ["TOPIC", "ChatNode", "DemoConfig", "run_demo"]
