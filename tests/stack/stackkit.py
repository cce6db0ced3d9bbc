"""What the full-stack test and its fixtures share: the secret, the partitions, the servers."""

from __future__ import annotations

from dataclasses import dataclass

from harness.kafka import PrivateBroker
from harness.postgres import PrivateCluster
from harness.redis import PrivateRedis

SECRET = "full-stack-secret-" + "s" * 64
PARTITIONS = 4


@dataclass
class Servers:
    cluster: PrivateCluster
    redis: PrivateRedis
    broker: PrivateBroker
