# Documentation fragment: the Redis connection options of every module built on
# module_utils/marketplace_redis.py (redis_argument_spec).
# A module takes them with `extends_documentation_fragment: [marketplace_redis]`; ansible-doc merges them into
# its DOCUMENTATION options (doc_fragment_plugins in ansible.cfg). A module that changes one of these options
# documents that option itself: its entry replaces the fragment's whole.
from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
---
options:
  login_host:
    description: Host name or address of the Redis server.
    type: str
    default: localhost
  login_port:
    description: TCP port of the Redis server.
    type: int
    default: 6379
  login_user:
    description: ACL user name (Redis 6+). Leave unset for the C(default) user with C(requirepass).
    type: str
  login_password:
    description:
      - Password (C(requirepass) or the ACL user's password).
      - When not set, the E(REDIS_PASSWORD) environment variable is used.
    type: str
  db:
    description: Logical database selected by the connection (C(SELECT)).
    type: int
    default: 0
  tls:
    description: Connect with TLS.
    type: bool
    default: false
  validate_certs:
    description: With O(tls=true), verify the server certificate and host name.
    type: bool
    default: true
  ca_certs:
    description: With O(tls=true), CA bundle file used to verify the server certificate.
    type: path
  connect_timeout:
    description: Seconds to wait for the TCP (and TLS) connection.
    type: float
    default: 3.0
  socket_timeout:
    description: Seconds to wait for any single reply.
    type: float
    default: 5.0
requirements:
  - redis (redis-py) >= 5.0 on the host that runs the module
"""
