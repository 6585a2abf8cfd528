from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from django.contrib import admin

        from .forms import SignInForm

        admin.site.login_form = SignInForm  # the admin's sign-in asks the same form

        from django.contrib.auth import get_user_model
        from django.contrib.auth.models import Group, Permission

        from live import stamp

        # a user's rights change what their pages show; a group's or a permission's, anyone's
        stamp.watch(get_user_model(), lambda user: (set(), {f"u:{user.pk}"}))
        stamp.watch(Group)
        stamp.watch(Permission)
