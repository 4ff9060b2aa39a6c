# Documentation fragment: the PostgreSQL connection options of every module built on
# module_utils/marketplace_postgres.py (postgres_common_argument_spec).
# A module takes them with `extends_documentation_fragment: [marketplace_postgres]`; ansible-doc merges them into
# its DOCUMENTATION options (doc_fragment_plugins in ansible.cfg). A module that changes one of these options
# (another default, another meaning) documents that option itself: its entry replaces the fragment's whole.
from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
---
options:
  login_host:
    description:
      - Host name or IP address of the PostgreSQL server, or a directory holding its Unix socket.
      - Falls back to the E(PGHOST) environment variable; when neither is set libpq's default socket is used.
    type: str
    aliases: [host]
  login_port:
    description:
      - Port of the server. Falls back to E(PGPORT).
    type: int
    default: 5432
    aliases: [port]
  login_user:
    description:
      - Database role to log in as. Falls back to E(PGUSER).
    type: str
    default: postgres
    aliases: [user]
  login_password:
    description:
      - Password of O(login_user). Falls back to E(PGPASSWORD). Never shown in any result or message.
    type: str
    aliases: [password]
  login_db:
    description:
      - Database to connect to. Falls back to E(PGDATABASE).
    type: str
    default: postgres
    aliases: [db]
  ssl_mode:
    description:
      - libpq C(sslmode) of the connection.
    type: str
    default: prefer
    choices: [disable, allow, prefer, require, verify-ca, verify-full]
  ca_cert:
    description:
      - CA certificate file used to verify the server (libpq C(sslrootcert)).
    type: path
    aliases: [ssl_rootcert]
  connect_timeout:
    description:
      - Seconds to wait for the connection (libpq C(connect_timeout); libpq treats values below 2 as 2).
    type: int
    default: 5
  statement_timeout:
    description:
      - Milliseconds each statement of the module may run (C(statement_timeout) of its transaction or session);
        0 disables the limit.
    type: int
    default: 5000
requirements:
  - psycopg >= 3.1 (psycopg 3)
"""
