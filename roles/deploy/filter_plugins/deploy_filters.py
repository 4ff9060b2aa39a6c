# Filters of the deploy role. The version check is module_utils/marketplace_inputs.validate_version, the one the
# playbooks' validate_inputs pre_task applies to the public `version`: the role applies it again to the version it
# acts on, whether it came from `version`, from deploy_version or from the deploy history (a rollback target).
from __future__ import annotations

import importlib.util
from pathlib import Path

# module_utils/<name>.py on the controller, through its one loader: module_utils/marketplace_controller.py.
_spec = importlib.util.spec_from_file_location(
    "marketplace_controller", Path(__file__).resolve().parents[3] / "module_utils" / "marketplace_controller.py")
_spec.loader.exec_module(_loader := importlib.util.module_from_spec(_spec))
_module_utils = _loader.module_utils


def deploy_version_error(value, name="version"):
    """'' when ``value`` is a valid release version (image tag), else the one-line reason it is refused."""
    inputs = _module_utils("marketplace_inputs")
    try:
        inputs.validate_version(value, name)
    except inputs.InputError as exc:
        return str(exc)
    return ""


# Values shorter than this are not masked: "1" (BROKEN_HEALTH=1) would mask every digit of a message.
MASK_MIN_LENGTH = 4


def deploy_redact(text, values):
    """``text`` with every value of ``values`` (build-arg values) of MASK_MIN_LENGTH characters or more masked."""
    text = "" if text is None else str(text)
    for value in sorted((str(v) for v in values or [] if v is not None), key=len, reverse=True):
        if len(value) >= MASK_MIN_LENGTH:
            text = text.replace(value, "********")
    return text


class FilterModule:
    def filters(self):
        return {"deploy_version_error": deploy_version_error, "deploy_redact": deploy_redact}
