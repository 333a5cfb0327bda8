"""Who is calling: owner credentials for the management APIs."""

from goodeye.errors import AuthRequired
from goodeye.http import bearer_key
from goodeye.identity.service import authenticate


def optional_project_id(allow_x_api_key=False):
    """The caller's project id, None when anonymous; a bad key raises InvalidApiKey."""
    key = bearer_key(allow_x_api_key)
    return authenticate(key) if key is not None else None


def required_project_id(allow_x_api_key=False):
    """The caller's project id; AuthRequired when the request carries no key."""
    project_id = optional_project_id(allow_x_api_key)
    if project_id is None:
        raise AuthRequired("An API key is required: Authorization: Bearer good_live_...")
    return project_id
