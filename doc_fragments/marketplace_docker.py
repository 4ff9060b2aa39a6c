# Documentation fragment: the Docker daemon and compose project options of every module built on
# module_utils/marketplace_docker.py (docker_argument_spec).
# A module takes them with `extends_documentation_fragment: [marketplace_docker]`; ansible-doc merges them into
# its DOCUMENTATION options (doc_fragment_plugins in ansible.cfg). The spec's `services` option is not here:
# what it selects differs from module to module, so each module documents it.
from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
---
options:
  docker_host:
    description:
      - URL of the Docker daemon. Falls back to the E(DOCKER_HOST) environment variable.
    type: str
    default: unix:///var/run/docker.sock
    aliases: [docker_url]
  timeout:
    description:
      - Timeout in seconds of each Docker API call.
    type: int
    default: 10
  project:
    description:
      - Compose project name. Falls back to the E(COMPOSE_PROJECT_NAME) environment variable.
    type: str
    required: true
    aliases: [project_name]
requirements:
  - docker (Docker SDK for Python) >= 7.1
"""
