from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from django.contrib import admin

        from .forms import SignInForm

        admin.site.login_form = SignInForm  # the admin's sign-in asks the same form
