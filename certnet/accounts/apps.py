from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "certnet.accounts"
    label = "accounts"

    def ready(self) -> None:
        from certnet.accounts.selectors import roles_of_user
        from certnet.core import visibility

        visibility.set_membership_source(roles_of_user)
