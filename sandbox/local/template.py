"""Read template.yaml into what the local stack needs: tables, queues, layers, functions and their events.

Nothing about the stack is described twice: every name, key schema, redrive policy, topic, handler,
environment variable and event comes from the template (alarms and dashboards have no local
counterpart and are left alone). ``Fn::ForEach`` loops (the
``AWS::LanguageExtensions`` transform: one definition per flow, stamped out for every flow) are
expanded first, as CloudFormation does before the SAM transform: ``${Id}`` and ``&{Id}`` in keys
and strings, and ``{"Ref": Id}``, become each item of the collection. Parameters take their
defaults unless overridden; ``Ref``, ``Fn::GetAtt``, ``Fn::Sub``, ``Fn::FindInMap``,
``Fn::Join``, ``Fn::Select``, ``Fn::Split``, ``Fn::If`` and conditions are resolved for the
resources the local stack knows, with physical names made the way the local stack creates them
(``<stack>-<LogicalId>`` unless the template names the resource) and ARNs/URLs in the local
account and region. An SQS URL the template writes out (``https://sqs.<region>.<suffix>/...``, such
as a queue URL prefix) points at the local endpoint, as a ``!Ref`` of a queue does.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ACCOUNT_ID = "123456789012"
"""The account moto uses by default."""
PARTITION = "aws"
URL_SUFFIX = "amazonaws.com"
LANGUAGE_EXTENSIONS = "AWS::LanguageExtensions"
FOREACH = "Fn::ForEach::"
IMPLICIT_API = "ServerlessRestApi"
"""The Api SAM creates for Api events without a RestApiId (stage "Prod")."""

Json = dict[str, Any]


class TemplateError(ValueError):
    """The template uses something the local stack cannot resolve."""


class _NoValue:
    """``AWS::NoValue``: the property is dropped."""


NO_VALUE = _NoValue()


@dataclass(frozen=True)
class TableSpec:
    """A DynamoDB table (``AWS::DynamoDB::Table``)."""

    logical_id: str
    name: str
    arn: str
    key_schema: list[Json]
    attribute_definitions: list[Json]
    global_secondary_indexes: list[Json] = field(default_factory=list)
    local_secondary_indexes: list[Json] = field(default_factory=list)
    billing_mode: str = "PAY_PER_REQUEST"
    ttl_attribute: str | None = None
    stream_view_type: str | None = None

    def create_table_kwargs(self) -> Json:
        """Arguments for ``dynamodb.create_table``."""
        kwargs: Json = {
            "TableName": self.name,
            "KeySchema": self.key_schema,
            "AttributeDefinitions": self.attribute_definitions,
            "BillingMode": self.billing_mode,
        }
        if self.billing_mode == "PROVISIONED":
            kwargs["ProvisionedThroughput"] = {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
        if self.global_secondary_indexes:
            gsis = []
            for gsi in self.global_secondary_indexes:
                g = {k: v for k, v in gsi.items() if k in ("IndexName", "KeySchema", "Projection")}
                if self.billing_mode == "PROVISIONED":
                    g["ProvisionedThroughput"] = {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
                gsis.append(g)
            kwargs["GlobalSecondaryIndexes"] = gsis
        if self.local_secondary_indexes:
            kwargs["LocalSecondaryIndexes"] = [
                {k: v for k, v in lsi.items() if k in ("IndexName", "KeySchema", "Projection")}
                for lsi in self.local_secondary_indexes
            ]
        if self.stream_view_type:
            kwargs["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": self.stream_view_type}
        return kwargs


@dataclass(frozen=True)
class QueueSpec:
    """An SQS queue (``AWS::SQS::Queue``) with its redrive policy, if any."""

    logical_id: str
    name: str
    url: str
    arn: str
    attributes: dict[str, str]
    """Attributes for ``sqs.create_queue`` (RedrivePolicy and RedriveAllowPolicy as JSON strings)."""
    dead_letter_queue: str | None = None
    """Logical id of the queue that receives messages after ``max_receive_count`` receives."""
    max_receive_count: int | None = None

    @property
    def visibility_timeout(self) -> int:
        return int(self.attributes.get("VisibilityTimeout", "30"))

    @property
    def fifo(self) -> bool:
        return self.attributes.get("FifoQueue") == "true"


@dataclass(frozen=True)
class TopicSpec:
    """An SNS topic (``AWS::SNS::Topic``): the local stack creates it in moto, so a function can
    publish to it (and a test can subscribe a queue to read what was published). Its subscriptions
    (an email address) are not made locally; alarms and dashboards have no local counterpart."""

    logical_id: str
    name: str
    arn: str


@dataclass(frozen=True)
class LayerSpec:
    """A layer (``AWS::Serverless::LayerVersion``) and where its code is importable from locally."""

    logical_id: str
    content_uri: Path
    build_method: str | None

    @property
    def import_path(self) -> Path:
        """The folder Lambda would put on ``sys.path`` (``/opt/python``).

        With a python ``BuildMethod`` SAM copies ContentUri *into* ``python/``, and so does this
        project's ``makefile`` build (``layers/shared/python/Makefile``, which compiles it too);
        without one the ContentUri is zipped as-is, so its own ``python/`` folder is the one.
        """
        if self.build_method and (self.build_method.startswith("python") or self.build_method == "makefile"):
            return self.content_uri
        return self.content_uri / "python"


@dataclass(frozen=True)
class ApiEvent:
    """An ``Api`` event: an API Gateway REST route to the function (proxy integration)."""

    name: str
    path: str
    method: str
    """Upper case; ``ANY`` for every method."""
    api: str
    stage: str


@dataclass(frozen=True)
class SqsEvent:
    """An ``SQS`` event source mapping."""

    name: str
    queue: str
    """Logical id of the queue."""
    batch_size: int = 10
    batching_window_s: int = 0
    report_batch_item_failures: bool = False
    maximum_concurrency: int | None = None
    enabled: bool = True


@dataclass(frozen=True)
class ScheduleEvent:
    """A ``Schedule`` (EventBridge rule) event: ``input`` is the parsed Input, or None for the rule's event."""

    name: str
    expression: str
    input: Any = None
    enabled: bool = True


@dataclass(frozen=True)
class FunctionSpec:
    """An ``AWS::Serverless::Function`` with Globals merged in."""

    logical_id: str
    name: str
    arn: str
    code_uri: Path
    handler: str
    runtime: str
    timeout: int
    memory_size: int
    environment: dict[str, str]
    layers: list[str]
    """Logical ids of the layers in this template (external layer ARNs are ignored locally)."""
    api_events: list[ApiEvent] = field(default_factory=list)
    sqs_events: list[SqsEvent] = field(default_factory=list)
    schedule_events: list[ScheduleEvent] = field(default_factory=list)

    @property
    def handler_file(self) -> Path:
        """``app.handler`` -> ``<CodeUri>/app.py``; ``pkg.mod.handler`` -> ``<CodeUri>/pkg/mod.py``."""
        module = self.handler.rsplit(".", 1)[0]
        return self.code_uri.joinpath(*module.split(".")).with_suffix(".py")

    @property
    def handler_attr(self) -> str:
        return self.handler.rsplit(".", 1)[1]


@dataclass
class StackTemplate:
    """A template resolved for the local stack."""

    path: Path
    stack_name: str
    region: str
    account_id: str
    aws_endpoint: str
    parameters: dict[str, Any]
    raw: Json
    tables: dict[str, TableSpec] = field(default_factory=dict)
    queues: dict[str, QueueSpec] = field(default_factory=dict)
    topics: dict[str, TopicSpec] = field(default_factory=dict)
    layers: dict[str, LayerSpec] = field(default_factory=dict)
    functions: dict[str, FunctionSpec] = field(default_factory=dict)
    apis: dict[str, str] = field(default_factory=dict)
    """Api logical id -> stage name."""

    @property
    def root(self) -> Path:
        return self.path.parent

    @property
    def dead_letter_queues(self) -> dict[str, QueueSpec]:
        """The queues some other queue redrives to."""
        targets = {q.dead_letter_queue for q in self.queues.values() if q.dead_letter_queue}
        return {k: q for k, q in self.queues.items() if k in targets}

    @property
    def source_queues(self) -> dict[str, QueueSpec]:
        """The queues that are not a dead-letter queue."""
        dlqs = self.dead_letter_queues
        return {k: q for k, q in self.queues.items() if k not in dlqs}

    def queue_by_arn(self, arn: str) -> QueueSpec:
        for q in self.queues.values():
            if q.arn == arn:
                return q
        raise KeyError(arn)

    def resolve(self, value: Any) -> Any:
        """Resolve intrinsic functions in ``value`` (a fragment of this template)."""
        return _Resolver(self).resolve(value)


def parse_yaml(path: Path, *, expand: bool = True) -> Json:
    """The template as plain data: samtranslator's parser reads the short intrinsic tags (``!Ref``...).

    With ``expand`` (the default) its ``Fn::ForEach`` loops are expanded (collections that are a
    ``!Ref`` to a parameter take the parameter's default), so ``Resources`` holds every resource
    the stack will have; ``expand=False`` gives the template as written.
    """
    from samtranslator.yaml_helper import yaml_parse

    data = yaml_parse(path.read_text())
    if not isinstance(data, dict) or "Resources" not in data:
        raise TemplateError(f"{path}: not a CloudFormation template (no Resources)")
    return expand_foreach(data) if expand else data


def expand_foreach(template: Json, parameters: dict[str, Any] | None = None) -> Json:
    """``template`` with every ``Fn::ForEach::<Loop>: [Id, Collection, {OutputKey: OutputValue}]``
    replaced by one ``OutputKey: OutputValue`` per item (nested loops too), as the
    ``AWS::LanguageExtensions`` transform does. A collection is a list of strings or a ``!Ref`` to a
    list parameter (``parameters``, else its default). Raises :class:`TemplateError` on a loop
    without the transform, a malformed loop, or two outputs with one key."""
    if parameters is None:
        declared: Json = template.get("Parameters") or {}
        parameters = {k: v["Default"] for k, v in declared.items() if isinstance(v, dict) and "Default" in v}
    params = parameters
    expanded: Json = _expand(template, params, "")
    if expanded != template and LANGUAGE_EXTENSIONS not in _transforms(template):
        raise TemplateError(f"Fn::ForEach needs Transform: {LANGUAGE_EXTENSIONS}")
    return expanded


def _transforms(template: Json) -> list[str]:
    declared = template.get("Transform") or []
    return [declared] if isinstance(declared, str) else list(declared)


def _expand(node: Any, params: dict[str, Any], where: str) -> Any:
    if isinstance(node, list):
        return [_expand(x, params, where) for x in node]
    if not isinstance(node, dict):
        return node
    out: Json = {}
    for key, value in node.items():
        if isinstance(key, str) and key.startswith(FOREACH):
            items = _loop(f"{where}/{key}", value, params)
        else:
            items = {key: _expand(value, params, f"{where}/{key}")}
        for k, v in items.items():
            if k in out:
                raise TemplateError(f"{where}/{k}: defined twice (Fn::ForEach output)")
            out[k] = v
    return out


def _loop(where: str, value: Any, params: dict[str, Any]) -> Json:
    if not (isinstance(value, list) and len(value) == 3 and isinstance(value[0], str) and isinstance(value[2], dict)):
        raise TemplateError(f"{where}: expected [Identifier, Collection, {{OutputKey: OutputValue}}]")
    ident, collection, body = value
    for key in body:
        if not key.startswith(FOREACH) and f"${{{ident}}}" not in key and f"&{{{ident}}}" not in key:
            raise TemplateError(f"{where}: output key {key!r} does not contain ${{{ident}}} or &{{{ident}}}")
    if isinstance(collection, dict) and set(collection) == {"Ref"}:
        name = collection["Ref"]
        if name not in params:
            raise TemplateError(f"{where}: collection !Ref {name} is not a parameter")
        collection = params[name]
        if isinstance(collection, str):
            collection = [c.strip() for c in collection.split(",")]
    if not isinstance(collection, list) or not all(isinstance(c, (str, int, float, bool)) for c in collection):
        raise TemplateError(f"{where}: the collection must be a list of strings or a !Ref to a list parameter")
    out: Json = {}
    for item in collection:
        text = "true" if item is True else "false" if item is False else str(item)
        fragment = _expand(_substitute(body, ident, text), params, where)
        for k, v in fragment.items():
            if k in out:
                raise TemplateError(f"{where}: {k} is output twice")
            out[k] = v
    return out


def _substitute(node: Any, ident: str, value: str) -> Any:
    """``${ident}`` -> value and ``&{ident}`` -> value without non-alphanumerics, in every key and
    string; ``{"Ref": ident}`` -> value."""
    if isinstance(node, str):
        alnum = re.sub(r"[^A-Za-z0-9]", "", value)
        return node.replace(f"${{{ident}}}", value).replace(f"&{{{ident}}}", alnum)
    if isinstance(node, list):
        return [_substitute(x, ident, value) for x in node]
    if isinstance(node, dict):
        if node == {"Ref": ident}:
            return value
        return {_substitute(k, ident, value): _substitute(v, ident, value) for k, v in node.items()}
    return node


def load_template(
    path: str | Path = "template.yaml",
    parameters: dict[str, Any] | None = None,
    *,
    stack_name: str = "erpsync",
    region: str = "us-east-1",
    account_id: str = ACCOUNT_ID,
    aws_endpoint: str = "http://127.0.0.1:5000",
    code_overrides: dict[str, str | Path] | None = None,
) -> StackTemplate:
    """Read and resolve ``path``. ``parameters`` override defaults; ``code_overrides`` maps a
    function's logical id to another CodeUri (tests point functions at throwaway handlers)."""
    path = Path(path).resolve()
    written = parse_yaml(path, expand=False)
    params = _parameters(written, parameters or {})
    raw = expand_foreach(written, params)
    st = StackTemplate(path, stack_name, region, account_id, aws_endpoint.rstrip("/"), params, raw)
    resolver = _Resolver(st)
    resources: Json = raw["Resources"]
    for lid, res in resources.items():
        if not resolver.condition_holds(res.get("Condition")):
            continue
        kind, props = res.get("Type"), res.get("Properties") or {}
        if kind == "AWS::DynamoDB::Table":
            st.tables[lid] = _table(st, lid, resolver.resolve(props))
        elif kind == "AWS::SQS::Queue":
            st.queues[lid] = _queue(st, lid, props, resolver)
        elif kind == "AWS::SNS::Topic":
            name = _topic_name(st, lid, props, resolver)
            st.topics[lid] = TopicSpec(lid, name, _topic_arn(st, name))
        elif kind in ("AWS::Serverless::LayerVersion", "AWS::Lambda::LayerVersion"):
            uri = props.get("ContentUri") or (props.get("Content") or {})
            if isinstance(uri, str):
                method = (res.get("Metadata") or {}).get("BuildMethod")
                st.layers[lid] = LayerSpec(lid, (st.root / uri).resolve(), method)
        elif kind == "AWS::Serverless::Api":
            st.apis[lid] = str(resolver.resolve(props.get("StageName", "Prod")))
    globals_fn: Json = (raw.get("Globals") or {}).get("Function") or {}
    overrides = {k: Path(v) for k, v in (code_overrides or {}).items()}
    for lid, res in resources.items():
        if res.get("Type") == "AWS::Serverless::Function" and resolver.condition_holds(res.get("Condition")):
            st.functions[lid] = _function(
                st, lid, res.get("Properties") or {}, globals_fn, resolver, overrides.get(lid)
            )
    return st


# --------------------------------------------------------------------------- parameters and resources


def _parameters(raw: Json, overrides: dict[str, Any]) -> dict[str, Any]:
    declared: Json = raw.get("Parameters") or {}
    unknown = set(overrides) - set(declared)
    if unknown:
        raise TemplateError(f"unknown parameter(s) {sorted(unknown)}; the template declares {sorted(declared)}")
    out: dict[str, Any] = {}
    for name, spec in declared.items():
        if name in overrides:
            value: Any = overrides[name]
        elif "Default" in spec:
            value = spec["Default"]
        else:
            raise TemplateError(f"parameter {name} has no default: pass it in parameters")
        if str(spec.get("Type", "String")).startswith(("CommaDelimitedList", "List<")):
            value = value if isinstance(value, list) else [v.strip() for v in str(value).split(",")]
        else:
            value = str(value)
        allowed = spec.get("AllowedValues")
        if allowed and value not in [str(a) for a in allowed]:
            raise TemplateError(f"parameter {name}={value!r} is not one of {allowed}")
        out[name] = value
    return out


def _physical_name(st: StackTemplate, lid: str, props: Json, key: str) -> str:
    name = props.get(key)
    return str(name) if name else f"{st.stack_name}-{lid}"


def _table(st: StackTemplate, lid: str, props: Json) -> TableSpec:
    name = _physical_name(st, lid, props, "TableName")
    ttl = props.get("TimeToLiveSpecification") or {}
    stream = props.get("StreamSpecification") or {}
    return TableSpec(
        logical_id=lid,
        name=name,
        arn=f"arn:{PARTITION}:dynamodb:{st.region}:{st.account_id}:table/{name}",
        key_schema=list(props["KeySchema"]),
        attribute_definitions=list(props["AttributeDefinitions"]),
        global_secondary_indexes=list(props.get("GlobalSecondaryIndexes") or []),
        local_secondary_indexes=list(props.get("LocalSecondaryIndexes") or []),
        billing_mode=str(props.get("BillingMode", "PROVISIONED")),
        ttl_attribute=str(ttl["AttributeName"]) if ttl.get("Enabled") in (True, "true") else None,
        stream_view_type=stream.get("StreamViewType"),
    )


QUEUE_ATTRIBUTES = (
    "DelaySeconds",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout",
    "FifoQueue",
    "ContentBasedDeduplication",
    "SqsManagedSseEnabled",
)


def _queue_name(st: StackTemplate, lid: str, raw_props: Json, resolver: _Resolver) -> str:
    name = resolver.resolve(raw_props.get("QueueName")) if raw_props.get("QueueName") else None
    if name:
        return str(name)
    fifo = str(raw_props.get("FifoQueue", "")).lower() == "true"
    return f"{st.stack_name}-{lid}" + (".fifo" if fifo else "")


def _topic_name(st: StackTemplate, lid: str, raw_props: Json, resolver: _Resolver) -> str:
    name = resolver.resolve(raw_props.get("TopicName")) if raw_props.get("TopicName") else None
    return str(name) if name else f"{st.stack_name}-{lid}"


def _topic_arn(st: StackTemplate, name: str) -> str:
    return f"arn:{PARTITION}:sns:{st.region}:{st.account_id}:{name}"


def _queue(st: StackTemplate, lid: str, raw_props: Json, resolver: _Resolver) -> QueueSpec:
    name = _queue_name(st, lid, raw_props, resolver)
    props = {k: v for k, v in raw_props.items() if k not in ("RedrivePolicy", "RedriveAllowPolicy")}
    props = resolver.resolve(props)
    attributes = {k: _attr_str(props[k]) for k in QUEUE_ATTRIBUTES if k in props}
    dlq: str | None = None
    max_receive: int | None = None
    redrive = raw_props.get("RedrivePolicy")
    if redrive:
        target = redrive.get("deadLetterTargetArn")
        dlq = _logical_of(target, st.raw["Resources"])
        if dlq is None:
            raise TemplateError(f"{lid}: deadLetterTargetArn must be !GetAtt <Queue>.Arn of a queue in the template")
        max_receive = int(resolver.resolve(redrive["maxReceiveCount"]))
        dlq_name = _queue_name(st, dlq, st.raw["Resources"][dlq].get("Properties") or {}, resolver)
        attributes["RedrivePolicy"] = json.dumps(
            {
                "deadLetterTargetArn": f"arn:{PARTITION}:sqs:{st.region}:{st.account_id}:{dlq_name}",
                "maxReceiveCount": max_receive,
            }
        )
    allow = raw_props.get("RedriveAllowPolicy")
    if allow:
        attributes["RedriveAllowPolicy"] = json.dumps(resolver.resolve(allow))
    return QueueSpec(
        logical_id=lid,
        name=name,
        url=f"{st.aws_endpoint}/{st.account_id}/{name}",
        arn=f"arn:{PARTITION}:sqs:{st.region}:{st.account_id}:{name}",
        attributes=attributes,
        dead_letter_queue=dlq,
        max_receive_count=max_receive,
    )


def _attr_str(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _logical_of(ref: Any, resources: Json) -> str | None:
    """The logical id behind ``!GetAtt X.Arn`` / ``!Ref X``, or a Sub of nothing but ``${X.Arn}`` /
    ``${X}`` (how a Fn::ForEach loop names its own resources); None when it is not a resource here."""
    if isinstance(ref, dict):
        if "Fn::GetAtt" in ref:
            target = ref["Fn::GetAtt"]
            lid = target[0] if isinstance(target, list) else str(target).split(".", 1)[0]
            return lid if lid in resources else None
        if "Ref" in ref:
            return ref["Ref"] if ref["Ref"] in resources else None
        if isinstance(ref.get("Fn::Sub"), str):
            m = re.fullmatch(r"\$\{([A-Za-z0-9]+)(?:\.[A-Za-z0-9.]+)?\}", ref["Fn::Sub"])
            return m.group(1) if m and m.group(1) in resources else None
    return None


def _merge_globals(globals_fn: Json, props: Json) -> Json:
    merged: Json = dict(globals_fn)
    for key, value in props.items():
        if key == "Environment":
            variables = {
                **((globals_fn.get("Environment") or {}).get("Variables") or {}),
                **((value or {}).get("Variables") or {}),
            }
            merged["Environment"] = {"Variables": variables}
        elif key == "Layers":
            merged["Layers"] = [*(globals_fn.get("Layers") or []), *value]
        else:
            merged[key] = value
    return merged


def _function(
    st: StackTemplate, lid: str, props: Json, globals_fn: Json, resolver: _Resolver, code_override: Path | None
) -> FunctionSpec:
    merged = _merge_globals(globals_fn, props)
    name = str(resolver.resolve(merged.get("FunctionName"))) if merged.get("FunctionName") else f"{st.stack_name}-{lid}"
    code_uri = code_override or st.root / str(resolver.resolve(merged.get("CodeUri", ".")))
    variables = resolver.resolve((merged.get("Environment") or {}).get("Variables") or {})
    layers = [lay for lay in (_logical_of(x, st.raw["Resources"]) for x in merged.get("Layers") or []) if lay]
    fn = FunctionSpec(
        logical_id=lid,
        name=name,
        arn=f"arn:{PARTITION}:lambda:{st.region}:{st.account_id}:function:{name}",
        code_uri=Path(code_uri).resolve(),
        handler=str(merged["Handler"]),
        runtime=str(merged.get("Runtime", "")),
        timeout=int(resolver.resolve(merged.get("Timeout", 3))),
        memory_size=int(resolver.resolve(merged.get("MemorySize", 128))),
        environment={k: _attr_str(v) for k, v in variables.items()},
        layers=layers,
    )
    for ev_name, ev in (props.get("Events") or {}).items():
        kind, ep = ev.get("Type"), ev.get("Properties") or {}
        if kind == "Api":
            api = _logical_of(ep.get("RestApiId"), st.raw["Resources"]) or IMPLICIT_API
            stage = st.apis.get(api, "Prod")
            fn.api_events.append(
                ApiEvent(ev_name, str(resolver.resolve(ep["Path"])), str(ep.get("Method", "any")).upper(), api, stage)
            )
        elif kind == "SQS":
            queue = _logical_of(ep.get("Queue"), st.raw["Resources"])
            if queue is None:
                raise TemplateError(f"{lid}.{ev_name}: Queue must be !GetAtt <Queue>.Arn of a queue in the template")
            scaling = resolver.resolve(ep.get("ScalingConfig") or {})
            fn.sqs_events.append(
                SqsEvent(
                    name=ev_name,
                    queue=queue,
                    batch_size=int(resolver.resolve(ep.get("BatchSize", 10))),
                    batching_window_s=int(resolver.resolve(ep.get("MaximumBatchingWindowInSeconds", 0))),
                    report_batch_item_failures="ReportBatchItemFailures"
                    in (resolver.resolve(ep.get("FunctionResponseTypes")) or []),
                    maximum_concurrency=int(scaling["MaximumConcurrency"]) if "MaximumConcurrency" in scaling else None,
                    enabled=_truthy(resolver.resolve(ep.get("Enabled", True))),
                )
            )
        elif kind in ("Schedule", "ScheduleV2"):
            expression = resolver.resolve(ep.get("Schedule") or ep.get("ScheduleExpression"))
            raw_input = resolver.resolve(ep.get("Input"))
            enabled = ep.get("Enabled", True) if "State" not in ep else resolver.resolve(ep["State"]) == "ENABLED"
            fn.schedule_events.append(
                ScheduleEvent(
                    name=ev_name,
                    expression=str(expression),
                    input=json.loads(raw_input) if isinstance(raw_input, str) else raw_input,
                    enabled=_truthy(resolver.resolve(enabled)),
                )
            )
    return fn


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def _lookup(mapping: Any, key: str) -> Any:
    """``mapping[key]``, keys compared as strings (YAML reads an unquoted ``60:`` as a number)."""
    if not isinstance(mapping, dict):
        return None
    return next((v for k, v in mapping.items() if str(k) == key), None)


# --------------------------------------------------------------------------- intrinsic functions


class _Resolver:
    """Evaluates intrinsic functions against the local stack's physical names."""

    def __init__(self, st: StackTemplate) -> None:
        self.st = st
        self.resources: Json = st.raw.get("Resources") or {}
        self.conditions: Json = st.raw.get("Conditions") or {}
        self.mappings: Json = st.raw.get("Mappings") or {}

    def pseudo(self) -> dict[str, str]:
        st = self.st
        return {
            "AWS::Region": st.region,
            "AWS::AccountId": st.account_id,
            "AWS::StackName": st.stack_name,
            "AWS::StackId": f"arn:{PARTITION}:cloudformation:{st.region}:{st.account_id}:stack/{st.stack_name}/local",
            "AWS::Partition": PARTITION,
            "AWS::URLSuffix": URL_SUFFIX,
        }

    def condition_holds(self, name: str | None) -> bool:
        if not name:
            return True
        if name not in self.conditions:
            raise TemplateError(f"unknown condition {name}")
        return bool(self.resolve(self.conditions[name]))

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [v for v in (self.resolve(x) for x in value) if v is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            fn = self._FUNCTIONS.get(key)
            if fn is not None:
                return fn(self, arg)
        return {k: r for k, r in ((k, self.resolve(v)) for k, v in value.items()) if r is not NO_VALUE}

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        pseudo = self.pseudo()
        if name in pseudo:
            return pseudo[name]
        if name in self.st.parameters:
            return self.st.parameters[name]
        if name in self.resources:
            return self._resource_ref(name)
        raise TemplateError(f"Ref to unknown name {name}")

    def _resource_ref(self, lid: str) -> str:
        st, res = self.st, self.resources[lid]
        kind = res.get("Type")
        if kind == "AWS::DynamoDB::Table":
            return st.tables[lid].name if lid in st.tables else _physical_name(st, lid, self._props(lid), "TableName")
        if kind == "AWS::SQS::Queue":
            name = _queue_name(st, lid, res.get("Properties") or {}, self)
            return f"{st.aws_endpoint}/{st.account_id}/{name}"
        if kind in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
            return f"{st.stack_name}-{lid}"
        if kind in ("AWS::Serverless::LayerVersion", "AWS::Lambda::LayerVersion"):
            return f"arn:{PARTITION}:lambda:{st.region}:{st.account_id}:layer:{st.stack_name}-{lid}:1"
        if kind == "AWS::Logs::LogGroup":
            return _physical_name(st, lid, self._props(lid), "LogGroupName")
        if kind == "AWS::SNS::Topic":  # a topic's Ref is its ARN
            return _topic_arn(st, _topic_name(st, lid, res.get("Properties") or {}, self))
        return f"{st.stack_name}-{lid}"

    def _props(self, lid: str) -> Json:
        props: Json = self.resolve(self.resources[lid].get("Properties") or {})
        return props

    def get_att(self, lid: str, attr: str) -> Any:
        if lid not in self.resources:
            raise TemplateError(f"GetAtt of unknown resource {lid}")
        st, kind = self.st, self.resources[lid].get("Type")
        if kind == "AWS::SQS::Queue":
            name = _queue_name(st, lid, self.resources[lid].get("Properties") or {}, self)
            values = {
                "Arn": f"arn:{PARTITION}:sqs:{st.region}:{st.account_id}:{name}",
                "QueueName": name,
                "QueueUrl": f"{st.aws_endpoint}/{st.account_id}/{name}",
            }
        elif kind == "AWS::DynamoDB::Table":
            name = self._resource_ref(lid)
            arn = f"arn:{PARTITION}:dynamodb:{st.region}:{st.account_id}:table/{name}"
            values = {"Arn": arn, "StreamArn": f"{arn}/stream/local"}
        elif kind in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
            values = {"Arn": f"arn:{PARTITION}:lambda:{st.region}:{st.account_id}:function:{st.stack_name}-{lid}"}
        elif kind == "AWS::SNS::Topic":
            name = _topic_name(st, lid, self.resources[lid].get("Properties") or {}, self)
            values = {"TopicArn": _topic_arn(st, name), "TopicName": name}
        else:
            values = {"Arn": f"arn:{PARTITION}:local:{st.region}:{st.account_id}:{st.stack_name}-{lid}"}
        if attr not in values:
            raise TemplateError(f"GetAtt {lid}.{attr} is not known to the local stack")
        return values[attr]

    def _sub(self, arg: Any) -> str:
        template, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))

        def one(name: str) -> str:
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name and name.split(".", 1)[0] in self.resources:
                lid, attr = name.split(".", 1)
                return str(self.get_att(lid, attr))
            return str(self.ref(name))

        out, i = [], 0
        while i < len(template):
            start = template.find("${", i)
            if start < 0:
                out.append(template[i:])
                break
            end = template.find("}", start)
            if end < 0:
                raise TemplateError(f"unterminated ${{ in Fn::Sub {template!r}")
            out.append(template[i:start])
            out.append(one(template[start + 2 : end]))
            i = end + 1
        return self._local_url("".join(out))

    def _local_url(self, text: str) -> str:
        """An SQS URL of the stack's region is served by the local endpoint (moto)."""
        sqs = f"https://sqs.{self.st.region}.{URL_SUFFIX}/"
        return f"{self.st.aws_endpoint}/{text[len(sqs) :]}" if text.startswith(sqs) else text

    def _find_in_map(self, arg: Any) -> Any:
        if not isinstance(arg, list) or len(arg) not in (3, 4):
            raise TemplateError(f"Fn::FindInMap takes [MapName, TopLevelKey, SecondLevelKey], not {arg!r}")
        name, top, second = (str(self.resolve(x)) for x in arg[:3])
        found = _lookup(_lookup(self.mappings.get(name), top), second)
        if found is not None:
            return found
        if len(arg) == 4 and isinstance(arg[3], dict) and "DefaultValue" in arg[3]:
            return self.resolve(arg[3]["DefaultValue"])
        raise TemplateError(f"Fn::FindInMap: no {name}.{top}.{second} in Mappings")

    def _get_att_fn(self, arg: Any) -> Any:
        lid, attr = (arg[0], arg[1]) if isinstance(arg, list) else str(arg).split(".", 1)
        return self.get_att(str(lid), str(self.resolve(attr)))

    def _join(self, arg: Any) -> str:
        sep, items = arg
        return str(sep).join(str(x) for x in self.resolve(items))

    def _select(self, arg: Any) -> Any:
        index, items = arg
        return self.resolve(items)[int(self.resolve(index))]

    def _split(self, arg: Any) -> list[str]:
        sep, text = arg
        return str(self.resolve(text)).split(str(sep))

    def _if(self, arg: Any) -> Any:
        name, yes, no = arg
        return self.resolve(yes if self.condition_holds(name) else no)

    def _equals(self, arg: Any) -> bool:
        a, b = self.resolve(arg)
        return str(a) == str(b)

    def _not(self, arg: Any) -> bool:
        return not self.resolve(arg)[0]

    def _and(self, arg: Any) -> bool:
        return all(self.resolve(arg))

    def _or(self, arg: Any) -> bool:
        return any(self.resolve(arg))

    def _condition(self, arg: Any) -> bool:
        return self.condition_holds(str(arg))

    def _ref_fn(self, arg: Any) -> Any:
        return self.ref(str(arg))

    def _to_json_string(self, arg: Any) -> str:
        return json.dumps(self.resolve(arg))

    _FUNCTIONS: dict[str, Any] = {
        "Ref": _ref_fn,
        "Fn::GetAtt": _get_att_fn,
        "Fn::Sub": _sub,
        "Fn::FindInMap": _find_in_map,
        "Fn::Join": _join,
        "Fn::Select": _select,
        "Fn::Split": _split,
        "Fn::If": _if,
        "Fn::Equals": _equals,
        "Fn::Not": _not,
        "Fn::And": _and,
        "Fn::Or": _or,
        "Condition": _condition,
        "Fn::ToJsonString": _to_json_string,
    }
