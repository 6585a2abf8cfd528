"""The connection pages. Every lookup goes through ``restrict(user)``: what a user may not see
answers 404; state changes are POST and go through ``connections.lifecycle``."""

from .actions import connection_bulk, connection_probe, connection_transition
from .edit import connection_edit
from .pages import connection_add, connection_detail, discovered_browser, kubeconfig_import
from .table import connection_export, connection_list, table_columns

__all__ = [
    "connection_add",
    "connection_bulk",
    "connection_detail",
    "connection_edit",
    "connection_export",
    "connection_list",
    "connection_probe",
    "connection_transition",
    "discovered_browser",
    "kubeconfig_import",
    "table_columns",
]
