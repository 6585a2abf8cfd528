"""The registry of connection kinds: a new kind is added here, in one place."""

from dataclasses import dataclass


@dataclass(frozen=True)
class ConnectionKind:
    slug: str
    label: str
    # Connects itself once registered: a successful probe moves it registered -> connected.
    self_connecting: bool = False
    # Credential kinds this connection kind accepts (empty: any).
    credential_kinds: tuple[str, ...] = ()
    # The icon drawn beside it (a symbol of static/vendor/lucide/sprite.svg).
    icon: str = "globe"


KINDS: dict[str, ConnectionKind] = {}


def register_kind(kind: ConnectionKind) -> ConnectionKind:
    KINDS[kind.slug] = kind
    return kind


def kind_choices() -> list[tuple[str, str]]:
    return [(kind.slug, kind.label) for kind in KINDS.values()]


def get_kind(slug: str) -> ConnectionKind:
    return KINDS[slug]


register_kind(
    ConnectionKind(
        "kubernetes",
        "Kubernetes",
        credential_kinds=("kubeconfig", "bearer_token"),
        icon="ship-wheel",
    )
)
register_kind(ConnectionKind("prometheus", "Prometheus", icon="flame"))
register_kind(
    ConnectionKind("grafana", "Grafana", credential_kinds=("api_key", "basic_auth"), icon="gauge")
)
register_kind(ConnectionKind("http", "HTTP(S) endpoint"))
register_kind(
    ConnectionKind(
        "remote_provider",
        "Remote provider registration",
        self_connecting=True,
        credential_kinds=("bearer_token",),
        icon="cloud",
    )
)


KIND_CHOICES = kind_choices()  # for the API schema's enum names; the registry is filled above
