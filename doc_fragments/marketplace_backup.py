# Documentation fragment: where the PostgreSQL client tools of the backup modules run, the options of
# module_utils/marketplace_backup.py (runner_argument_spec).
# A module takes them with `extends_documentation_fragment: [marketplace_backup]`; ansible-doc merges them into
# its DOCUMENTATION options (doc_fragment_plugins in ansible.cfg). A module that changes one of these options
# (backup_catalog and backup_restore give tool_timeout another default) documents that option itself: its
# entry replaces the fragment's whole.
from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
---
options:
  tools:
    description:
      - Where the PostgreSQL client tools (C(pg_dump), C(pg_restore)) run.
      - C(container) - inside the postgres container of the compose project (C(docker exec) through the Docker
        SDK), the server's own binaries with peer authentication on its local socket.
      - C(local) - on the host the module runs on (binaries from O(pg_bin_dir) or the PATH), over TCP where they
        connect to the server.
    type: str
    default: container
    choices: [container, local]
  docker_host:
    description: Docker daemon URL (O(tools=container)). Falls back to E(DOCKER_HOST).
    type: str
    default: unix:///var/run/docker.sock
  compose_project:
    description: Compose project of the postgres container (selected by the compose labels).
    type: str
    default: equipment-marketplace
  postgres_service:
    description: Compose service of the postgres container.
    type: str
    default: postgres
  container:
    description: Name or id of the postgres container; overrides O(compose_project) / O(postgres_service).
    type: str
  container_dir:
    description:
      - Path of O(backup_dir) inside the container. Default - worked out from the container's mounts.
    type: str
  container_db_user:
    description: Database role the tools use inside the container (peer authentication on the socket).
    type: str
    default: postgres
  container_exec_user:
    description: OS user the tools run as inside the container (must be mapped to O(container_db_user)).
    type: str
    default: root
  container_socket_dir:
    description: Socket directory inside the container; default libpq's.
    type: str
  container_port:
    description:
      - Port of the server inside the container (its socket name); default O(login_port) in the modules that
        have it, else libpq's default.
    type: int
  pg_bin_dir:
    description: Directory of the client binaries for O(tools=local); default the PATH.
    type: path
  tool_timeout:
    description: Seconds each run of a client tool (C(pg_dump), C(pg_restore)) may take.
    type: int
    default: 3600
"""
