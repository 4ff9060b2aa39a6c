# AnsibleModule with masking before any failure: the secrets of the raw arguments (nested dict options handled
# by hand, passwords inside URLs and conninfo strings, the no_log options themselves) are registered as no_log
# values as soon as the arguments are read, before the argument spec or any of the module's own checks can fail.
# Every module of library/ is built with it.
from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.marketplace_common import early_no_log_values


class MarketplaceModule(AnsibleModule):

    def _load_params(self):
        super()._load_params()
        # Called by AnsibleModule.__init__ right after no_log_values is created and before validation.
        self.no_log_values.update(early_no_log_values(self.params, self.argument_spec))
