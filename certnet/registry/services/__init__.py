"""Changes to the registry. Each function is one transaction, checks the actor's right through
certnet.core.visibility, validates completely before writing, and appends to the audit log.

`actor` is a user, or a `SystemActor` for trusted platform processes (the framework loader, the CLI
run by the operator), which are not subject to organisation roles."""

from certnet.registry.services.common import _one_year_after
from certnet.registry.services.designations import (
    DESIGNATION_DETAILS,
    REQUIRED_FOR,
    TRANSITIONS,
    DesignationInput,
    propose_designation,
    record_designation_on_file,
    record_designation_review,
    transition_designation,
    update_designation_details,
)
from certnet.registry.services.organisations import (
    ORGANISATION_FIELDS,
    OrganisationInput,
    assign_function,
    create_organisation,
    set_reporting_line,
    update_organisation,
)
from certnet.registry.services.resources import (
    AddedResource,
    add_asn,
    add_cii_system,
    add_contact,
    add_domain,
    add_netblock,
    link_cii_system,
    retire_resource,
)

__all__ = [
    "DESIGNATION_DETAILS",
    "ORGANISATION_FIELDS",
    "REQUIRED_FOR",
    "TRANSITIONS",
    "AddedResource",
    "DesignationInput",
    "OrganisationInput",
    "_one_year_after",
    "add_asn",
    "add_cii_system",
    "add_contact",
    "add_domain",
    "add_netblock",
    "assign_function",
    "create_organisation",
    "link_cii_system",
    "propose_designation",
    "record_designation_on_file",
    "record_designation_review",
    "retire_resource",
    "set_reporting_line",
    "transition_designation",
    "update_designation_details",
    "update_organisation",
]
