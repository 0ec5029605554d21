"""Read template.yaml: the single source of functions, routes, the authorizer wiring and throttling."""

import importlib
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"


class _CfnLoader(yaml.SafeLoader):
    """A YAML loader that keeps CloudFormation short-form tags (`!Ref`, `!GetAtt`, …) as data."""


def substitute(
    text: str, variables: dict[str, Any], ref: Callable[[str], Any], get_att: Callable[[str, str], Any]
) -> str:
    """`Fn::Sub`'s text with each `${…}` replaced: `${!x}` stands for `${x}`, then the
    variables, `${Resource.Attribute}` (`get_att`) and any other name (`ref`)."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith("!"):
            return "${" + name[1:] + "}"
        if name in variables:
            return str(variables[name])
        if "." in name and not name.startswith("AWS::"):
            target, attribute = name.split(".", 1)
            return str(get_att(target, attribute))
        return str(ref(name))

    return re.sub(r"\$\{([^}]+)\}", replace, text)


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if name == "Fn::GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _tag)


@dataclass(frozen=True)
class Function:
    name: str
    code_uri: Path
    handler: str
    layers: tuple[Path, ...]
    environment: dict[str, Any]
    log_group: str | None = None  # the LogGroup resource its LoggingConfig names
    reserved_concurrency: str | None = None  # the parameter its ReservedConcurrentExecutions reads
    folder: str = ""  # its CodeUri as the template gives it, relative to the template (`functions/roles`)

    @property
    def module(self) -> str:
        return self.handler.rsplit(".", 1)[0]

    @property
    def package(self) -> str:
        """Its top-level package (`roles_fn`): unique across functions, so every runtime imports it alike."""
        return self.handler.split(".", 1)[0]

    @property
    def attribute(self) -> str:
        return self.handler.rsplit(".", 1)[1]


Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


def import_handler(function: Function) -> Handler:
    """Import a handler exactly as Lambda does: the function folder and its layers on sys.path."""
    for folder in (function.code_uri, *function.layers):
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
    module = importlib.import_module(function.module)
    handler: Handler = getattr(module, function.attribute)
    return handler


@dataclass(frozen=True)
class Authorizer:
    name: str
    function: str
    headers: tuple[str, ...]
    context: tuple[str, ...]
    ttl: int


@dataclass(frozen=True)
class Throttle:
    """API Gateway's limit for one route: `burst` requests at once, refilled at `rate` per second."""

    rate: float
    burst: int


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    function: str
    authorizer: str | None
    pattern: re.Pattern[str] = field(compare=False, repr=False)

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if self.method not in (method, "ANY"):
            return None
        found = self.pattern.fullmatch(path)
        return None if found is None else found.groupdict()


@dataclass(frozen=True)
class Template:
    functions: dict[str, Function]
    routes: tuple[Route, ...]
    authorizers: dict[str, Authorizer]
    cors: dict[str, Any] | None
    parameters: dict[str, Any] = field(default_factory=dict)
    default_throttle: Throttle | None = None
    route_throttles: dict[str, Throttle] = field(default_factory=dict)
    resources: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    root: Path = ROOT

    @property
    def api_functions(self) -> dict[str, Function]:
        """The functions that serve routes (each a FastAPI app), in the template's order."""
        serving = {route.function for route in self.routes}
        return {name: function for name, function in self.functions.items() if name in serving}

    @property
    def gateway_functions(self) -> dict[str, Function]:
        """The functions API Gateway invokes: the authorizers' and those that serve routes."""
        invoked = {route.function for route in self.routes} | {a.function for a in self.authorizers.values()}
        return {name: function for name, function in self.functions.items() if name in invoked}

    @property
    def log_groups(self) -> dict[str, dict[str, Any]]:
        """Each AWS::Logs::LogGroup resource's properties, by resource name."""
        return {
            name: dict(res.get("Properties") or {})
            for name, res in self.resources.items()
            if res["Type"] == "AWS::Logs::LogGroup"
        }

    def stack(self, name: str) -> dict[str, Any]:
        """The template of a nested application (its `Location`), parsed like the root."""
        location = self.resources[name]["Properties"]["Location"]
        loaded: dict[str, Any] = yaml.load((self.root / location).read_text(), Loader=_CfnLoader)  # noqa: S506
        return loaded

    def passed_functions(self, stack: str) -> dict[str, str]:
        """The functions the root passes a nested application, by their parameter (`!Ref XFunction`)."""
        parameters = self.resources[stack]["Properties"].get("Parameters") or {}
        return {
            parameter: ref
            for parameter, value in parameters.items()
            if (ref := _ref(value)) is not None and ref in self.functions
        }

    def throttle(self, route_key: str) -> Throttle | None:
        """The stage's limit for a route: its own RouteSettings, else DefaultRouteSettings."""
        return self.route_throttles.get(route_key, self.default_throttle)

    def resolve(self, value: Any, overrides: dict[str, str] | None = None) -> Any:
        """A value with `!Ref Parameter` replaced by the override or the parameter's default."""
        if isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"] in self.parameters:
            spec = self.parameters[value["Ref"]]
            raw = (overrides or {}).get(value["Ref"], spec.get("Default", ""))
            return [part.strip() for part in str(raw).split(",") if part.strip()] if "List" in spec["Type"] else raw
        if isinstance(value, dict):
            return {k: self.resolve(v, overrides) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v, overrides) for v in value]
        return value

    def find(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        """The route API Gateway would pick: exact paths beat parameters, greedy paths come last."""
        candidates = [(route, params) for route in self.routes if (params := route.match(method, path)) is not None]
        if not candidates:
            return None
        return min(candidates, key=lambda c: (c[0].path.count("{"), "+}" in c[0].path, -len(c[0].path)))


def _path_pattern(path: str) -> re.Pattern[str]:
    regex = ""
    for part in re.split(r"(\{[^}]+\})", path):
        if part.startswith("{") and part.endswith("+}"):
            regex += f"(?P<{part[1:-2]}>.+)"
        elif part.startswith("{"):
            regex += f"(?P<{part[1:-1]}>[^/]+)"
        else:
            regex += re.escape(part)
    return re.compile(regex)


def _ref(value: Any) -> str | None:
    if isinstance(value, dict):
        if "Ref" in value:  # `!Ref Function.Alias` (AutoPublishAlias) names the function too
            return str(value["Ref"]).removesuffix(".Alias")
        if "Fn::GetAtt" in value:
            return str(value["Fn::GetAtt"][0])
    return None


def _reserved(value: Any) -> str | None:
    """The parameter a ReservedConcurrentExecutions reads: `!Ref P`, or `!If [C, !Ref P, !Ref AWS::NoValue]`."""
    if isinstance(value, dict) and "Fn::If" in value:
        value = value["Fn::If"][1]
    ref = _ref(value)
    return None if ref is None or ref.startswith("AWS::") else ref


def _throttle(settings: dict[str, Any] | None) -> Throttle | None:
    if not settings or "ThrottlingRateLimit" not in settings or "ThrottlingBurstLimit" not in settings:
        return None
    return Throttle(float(settings["ThrottlingRateLimit"]), int(settings["ThrottlingBurstLimit"]))


def parse(text: str, root: Path = ROOT, overrides: dict[str, str] | None = None) -> Template:
    """The template, with parameters resolved to `overrides` or their defaults."""
    doc = yaml.load(text, Loader=_CfnLoader)  # noqa: S506  (a SafeLoader subclass)
    parameters = Template({}, (), {}, None, dict(doc.get("Parameters") or {}))
    resources: dict[str, Any] = doc["Resources"]
    globals_fn = (doc.get("Globals") or {}).get("Function") or {}
    layer_dirs = {
        name: root / res["Properties"]["ContentUri"]
        for name, res in resources.items()
        if res["Type"] == "AWS::Serverless::LayerVersion"
    }
    functions: dict[str, Function] = {}
    routes: list[Route] = []
    authorizers: dict[str, Authorizer] = {}
    cors = None
    default_authorizer: str | None = None
    default_throttle: Throttle | None = None
    route_throttles: dict[str, Throttle] = {}
    for res in resources.values():
        if res["Type"] != "AWS::Serverless::HttpApi":
            continue
        props = res.get("Properties") or {}
        auth = props.get("Auth") or {}
        default_authorizer = auth.get("DefaultAuthorizer")
        cors = parameters.resolve(props.get("CorsConfiguration"), overrides)
        default_throttle = _throttle(parameters.resolve(props.get("DefaultRouteSettings"), overrides))
        for route_key, settings in (props.get("RouteSettings") or {}).items():
            if (limit := _throttle(parameters.resolve(settings, overrides))) is not None:
                route_throttles[route_key] = limit
        for auth_name, spec in (auth.get("Authorizers") or {}).items():
            identity = spec.get("Identity") or {}
            authorizers[auth_name] = Authorizer(
                name=auth_name,
                function=_ref(spec["FunctionArn"]) or "",
                headers=tuple(identity.get("Headers") or ()),
                context=tuple(identity.get("Context") or ()),
                ttl=int(parameters.resolve(identity.get("ReauthorizeEvery", 300), overrides)),
            )
    for name, res in resources.items():
        if res["Type"] != "AWS::Serverless::Function":
            continue
        props = res["Properties"]
        layers = tuple(
            layer_dirs[ref]
            for layer in props.get("Layers", globals_fn.get("Layers", []))
            if (ref := _ref(layer)) in layer_dirs
        )
        env = {
            **((globals_fn.get("Environment") or {}).get("Variables") or {}),
            **((props.get("Environment") or {}).get("Variables") or {}),
        }
        functions[name] = Function(
            name,
            root / props["CodeUri"],
            props["Handler"],
            layers,
            env,
            _ref((props.get("LoggingConfig") or {}).get("LogGroup")),
            _reserved(props.get("ReservedConcurrentExecutions")),
            Path(props["CodeUri"]).as_posix(),
        )
        for event in (props.get("Events") or {}).values():
            if event["Type"] != "HttpApi":
                continue
            ep = event["Properties"]
            auth = (ep.get("Auth") or {}).get("Authorizer", default_authorizer)
            path = ep["Path"]
            routes.append(
                Route(ep["Method"].upper(), path, name, None if auth == "NONE" else auth, _path_pattern(path))
            )
    if cors and cors.get("AllowCredentials") and "*" in cors.get("AllowOrigins", []):
        raise ValueError("CORS: a wildcard origin cannot be combined with credentials")
    return Template(
        functions,
        tuple(routes),
        authorizers,
        cors,
        dict(doc.get("Parameters") or {}),
        default_throttle,
        route_throttles,
        resources,
        dict(doc.get("Outputs") or {}),
        root,
    )


@lru_cache
def load(path: Path = TEMPLATE, overrides: tuple[tuple[str, str], ...] = ()) -> Template:
    return parse(path.read_text(), path.parent, dict(overrides))
