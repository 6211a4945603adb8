"""``ray start --address=...`` for a worker node that says it is another host (127.0.0.2).

Ray's CLI refuses to join a worker while ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``
(the setting that keeps every port on 127.0.0.1), and with it unset it turns
the head's 127.0.0.1 into the machine's public address before connecting,
which is traffic off loopback. This launcher runs Ray's own ``start`` command
with those two decisions made here instead: the join is allowed, and the
head's address is used as given. Every process the node forks still gets
``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` and an explicit ``--node-ip-address``.

Usage: python tests/ray/join_node.py --address=127.0.0.1:PORT --node-ip-address=127.0.0.2 ...
"""

from __future__ import annotations

import sys


def main() -> int:
    import ray._private.ray_constants as ray_constants
    import ray._private.services as services
    from ray.scripts import scripts

    ip = next(
        (a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--node-ip-address=")),
        "127.0.0.2",
    )
    ray_constants.ENABLE_RAY_CLUSTER = True  # type: ignore[misc]
    services.resolve_ip_for_localhost = lambda host: host  # type: ignore[assignment]
    services.get_node_ip_address = lambda address=None: ip  # type: ignore[assignment]
    scripts.start.main(args=sys.argv[1:], standalone_mode=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
