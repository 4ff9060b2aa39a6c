"""Equipment Marketplace runbook: run its playbooks through ansible-runner from Python or the shell."""
from runbook.driver import PROJECT_ROOT, RunResult, run_playbook

__all__ = ["PROJECT_ROOT", "RunResult", "run_playbook"]
