"""MkDocs hooks (mkdocs.yml, `hooks:`): the reference pages that are generated from the code.

A page asks for a generated part with a marker line, which `on_page_markdown` replaces:

    <!-- generated: cli -->        every `qa` command and flag, walked from qa.cli.build_parser()
    <!-- generated: settings -->   every Settings field by section: its variable, flag, default,
                                   allowed values, whether the index records it, and what it sets,
                                   as qa/config.py declares it
    <!-- generated: serve -->      the web server's flags, from the same parser
    <!-- generated: variables -->  the other QA_* variables the package reads, and where
    <!-- generated: rest -->       the REST API's routes and schemas, from the OpenAPI document that
                                   qa.web.api builds

So the reference cannot drift from the code: a new flag, setting or route is on the site at the
next `make docs`, with the text its help, comment or docstring gives it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MARKER = re.compile(r"^<!-- generated: (?P<name>[a-z]+) -->$", re.M)

# The references describe the checkout being built, even where another copy of qa is installed.
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def on_page_markdown(markdown: str, page, config, files) -> str:
    def generated(match: re.Match) -> str:
        name = match.group("name")
        if name not in GENERATORS:
            raise ValueError(f"{page.file.src_path}: unknown generated part {name!r} ({', '.join(GENERATORS)})")
        return GENERATORS[name]()

    return MARKER.sub(generated, markdown)


# -- Markdown helpers ---------------------------------------------------------------------------


def text(value: object) -> str:
    """Help or comment text for a table cell: one line, Markdown's specials escaped outside `code`."""
    parts = re.split(r"(`[^`]*`)", " ".join(str(value).split()))
    out = []
    for part in parts:
        if part.startswith("`") and part.endswith("`") and len(part) > 1:
            out.append(part.replace("|", "\\|"))
        else:
            out.append(re.sub(r"([\\*_\[\]|<>])", r"\\\1", part))
    return "".join(out)


def slug(heading: str) -> str:
    """The anchor MkDocs gives a plain heading (its default toc slugify)."""
    return re.sub(r"[-\s]+", "-", re.sub(r"[^\w\s-]", "", heading).strip().lower())


def code(value: object) -> str:
    value = str(value).replace("|", "\\|")
    return f"`` {value} ``" if "`" in value else f"`{value}`"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


# -- the command line ---------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    from qa.cli import build_parser

    return build_parser()


def subcommands(p: argparse.ArgumentParser) -> list[tuple[str, str, argparse.ArgumentParser]]:
    """(name, help, parser) of each sub-command of `p`, in the order they were added."""
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            return [(name, helps.get(name, ""), sub) for name, sub in action.choices.items()]
    return []


def flag_cell(action: argparse.Action) -> str:
    if not action.option_strings:
        name = action.metavar or action.dest
        return code(name.upper() if action.nargs in ("+", "*") else name)
    shown = ", ".join(action.option_strings)
    if action.nargs != 0:
        if action.choices:
            shown += " {" + ",".join(map(str, action.choices)) + "}"
        elif isinstance(action.metavar, tuple):
            shown += " " + " ".join(action.metavar)
        else:
            shown += " " + (action.metavar or action.dest.upper())
    return code(shown)


def default_cell(action: argparse.Action) -> str:
    if action.nargs == 0 or action.default in (None, argparse.SUPPRESS) or action.required:
        return ""
    return code(action.default)


def arguments_table(p: argparse.ArgumentParser) -> str:
    sections = []
    for group in p._action_groups:
        actions = [
            a
            for a in group._group_actions
            if not isinstance(a, argparse._SubParsersAction | argparse._HelpAction) and a.help != argparse.SUPPRESS
        ]
        if not actions:
            continue
        rows = [[flag_cell(a), default_cell(a), text(a.help or "")] for a in actions]
        title = {"positional arguments": "arguments", "options": "options"}.get(group.title, group.title)
        sections.append(f"*{title}*\n\n" + table(["flag", "default", "what it does"], rows))
    return "\n\n".join(sections)


def command_section(prog: str, summary: str, p: argparse.ArgumentParser, level: int) -> list[str]:
    usage = p.format_usage().strip().removeprefix("usage: ")
    out = [f"{'#' * level} `{prog}`", ""]
    if summary:
        out += [text(summary[0].upper() + summary[1:]) + ".", ""]
    out += ["```text", re.sub(r"\s+", " ", usage), "```", ""]
    arguments = arguments_table(p)
    if arguments:
        out += [arguments, ""]
    for name, help_text, sub in subcommands(p):
        out += command_section(f"{prog} {name}", help_text, sub, level + 1)
    return out


def cli_reference() -> str:
    top = parser()
    out = [text(top.description), "", "```text", re.sub(r"\s+", " ", top.format_usage().strip()), "```", ""]
    out += [table(["command", "what it does"], [[f"[`qa {n}`](#qa-{n})", text(h)] for n, h, _ in subcommands(top)])]
    out.append("")
    for name, help_text, sub in subcommands(top):
        out += command_section(f"qa {name}", help_text, sub, 3)
    return "\n".join(out)


# -- settings -----------------------------------------------------------------------------------


def settings_flags() -> dict[str, str]:
    """Settings field -> the flag that overrides it, as `qa`'s parser has it (qa.arguments.settings_overrides)."""
    from qa.arguments import settings_overrides

    actions = {a.dest: a for _, _, sub in subcommands(parser()) for a in sub._actions if a.option_strings}
    named = settings_overrides(argparse.Namespace(**{dest: dest for dest in actions}))
    return {field: actions[dest].option_strings[0] for field, dest in named.items() if dest in actions}


def settings_reference() -> str:
    """A table per section of Settings, from each field's declaration (qa.config.setting)."""
    from qa import config

    flags = settings_flags()
    out = []
    for section in config.SECTIONS:
        rows = []
        for field in dataclasses.fields(config.Settings):
            declared = field.metadata
            if declared["section"] != section:
                continue
            default = "fitted" if field.default is None else "none" if field.default == "" else code(field.default)
            if declared["choices"]:
                allowed = ", ".join(code(c) for c in declared["choices"])
            else:
                allowed = text(declared["allowed"] or "")
            rows.append(
                [
                    code(declared["env"]),
                    code(flags[field.name]) if field.name in flags else "",
                    default,
                    allowed,
                    "yes" if declared["index"] else "",
                    text(declared["help"]),
                ]
            )
        if rows:
            header = ["variable", "flag", "default", "allowed", "index setting", "what it sets"]
            out.append(f"*{SECTION_TITLES[section]}*\n\n" + table(header, rows))
    return "\n\n".join(out)


SECTION_TITLES = {
    "index": "indexing: what `qa index` reads and builds",
    "search": "searching and answering",
    "store": "where the index lives",
    "serve": "the web server",
}


def serve_reference() -> str:
    serve = dict((name, sub) for name, _, sub in subcommands(parser()))["serve"]
    group = next(g for g in serve._action_groups if g.title == "web server")
    rows = [[flag_cell(a), default_cell(a), text(a.help or "")] for a in group._group_actions]
    return table(["flag", "default", "what it does"], rows)


def variables_reference() -> str:
    """QA_* names that the package reads besides the settings and the server's, with the modules."""
    from qa import config

    known = set(config.ENV_VARS.values())
    known |= {value for name, value in vars(config).items() if name.endswith("_ENV") and isinstance(value, str)}
    where: dict[str, set[str]] = {}
    for path in sorted((REPO / "qa").rglob("*.py")):
        module = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        for name in re.findall(r"[\"'](QA_[A-Z0-9_]+)[\"']", path.read_text(encoding="utf-8")):
            if name not in known:
                where.setdefault(name, set()).add(module)
    rows = [[code(name), ", ".join(code(m) for m in sorted(modules))] for name, modules in sorted(where.items())]
    return table(["variable", "read in"], rows)


# -- the REST API -------------------------------------------------------------------------------


def openapi() -> dict:
    from qa.web.api import create_api

    # The routes and their schemas do not depend on the service or the token; the app is only built.
    return create_api(None).app.openapi()


def schema_type(schema: dict) -> str:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{name.lower()})"
    if "anyOf" in schema:
        kinds = [schema_type(s) for s in schema["anyOf"]]
        return " or ".join(kinds)
    if "enum" in schema:
        return " \\| ".join(code(v) for v in schema["enum"])
    if "const" in schema:
        return code(schema["const"])
    kind = schema.get("type", "any")
    if kind == "array":
        return "list of " + schema_type(schema.get("items", {}))
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return "object of " + schema_type(schema["additionalProperties"])
    return kind


def limits(schema: dict) -> str:
    words = {
        "minimum": "≥",
        "maximum": "≤",
        "exclusiveMinimum": ">",
        "exclusiveMaximum": "<",
        "minLength": "min length",
        "maxLength": "max length",
        "maxItems": "max items",
    }
    found = [f"{words[k]} {schema[k]:g}" for k in words if k in schema]
    for option in schema.get("anyOf", ()):
        found += [f"{words[k]} {option[k]:g}" for k in words if k in option]
    return "; ".join(found)


def rest_reference() -> str:
    spec = openapi()
    base = spec.get("servers", [{}])[0].get("url", "")
    out = [text(spec["info"]["description"]), ""]
    routes = [
        [f"[`{method.upper()} {base}{path}`](#{slug(operation['summary'])})", text(operation.get("summary", ""))]
        for path, methods in spec["paths"].items()
        for method, operation in methods.items()
    ]
    out += [table(["route", "what it does"], routes), ""]
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            out += [f"### {operation['summary']}", "", f"`{method.upper()} {base}{path}`", ""]
            out += [text(operation.get("description", "")), ""]
            parameters = operation.get("parameters", [])
            if parameters:
                rows = [
                    [
                        code(p["name"]),
                        p["in"],
                        schema_type(p["schema"]),
                        "yes" if p.get("required") else "",
                        text(p.get("description", "")),
                    ]
                    for p in parameters
                ]
                out += [table(["parameter", "in", "type", "required", "description"], rows), ""]
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body:
                out += [f"Body: {schema_type(body['schema'])} (JSON).", ""]
            rows = []
            for status, response in sorted(operation["responses"].items()):
                # The API answers a request that fails validation with 400 and its Error body
                # (qa.web.api's handler), not FastAPI's 422, which its OpenAPI still lists.
                if status == "422":
                    continue
                content = response.get("content", {}).get("application/json", {})
                rows.append([status, text(response["description"]), schema_type(content.get("schema", {}))])
            out += [table(["status", "meaning", "body"], rows), ""]
    out += ["### Schemas", ""]
    for name, schema in spec["components"]["schemas"].items():
        if name in ("HTTPValidationError", "ValidationError"):
            continue
        out += [f"#### {name}", ""]
        if schema.get("description"):
            out += [text(schema["description"]), ""]
        required = set(schema.get("required", ()))
        rows = []
        for field, prop in schema.get("properties", {}).items():
            default = code(json.dumps(prop["default"])) if prop.get("default") not in (None, []) else ""
            description = text(prop.get("description", ""))
            bounds = limits(prop)
            rows.append(
                [
                    code(field),
                    schema_type(prop),
                    "yes" if field in required else "",
                    default,
                    description + (f" ({bounds})" if bounds else ""),
                ]
            )
        if rows:
            out += [table(["field", "type", "required", "default", "description"], rows), ""]
    return "\n".join(out)


def mcp_reference() -> str:
    """The MCP server's tools as the server lists them: each one's description and arguments."""
    import asyncio

    from qa.web.mcp_server import create_mcp

    # Listing the tools does not call the service: the server is only built.
    tools = asyncio.run(create_mcp(None).list_tools())
    out = [table(["tool", "what it does"], [[code(t.name), text((t.description or "").split(". ")[0])] for t in tools])]
    for tool in tools:
        out += ["", f"### {tool.name}", "", text(tool.description or ""), ""]
        schema = tool.input_schema
        required = set(schema.get("required", ()))
        rows = [
            [
                code(name),
                schema_type(prop),
                "yes" if name in required else code(prop.get("default")),
                limits(prop),
                text(prop.get("description", "")),
            ]
            for name, prop in schema.get("properties", {}).items()
        ]
        header = ["argument", "type", "required or default", "limits", "what it is"]
        out.append(table(header, rows) if rows else "No arguments.")
    return "\n".join(out)


GENERATORS = {
    "mcp": mcp_reference,
    "cli": cli_reference,
    "settings": settings_reference,
    "serve": serve_reference,
    "variables": variables_reference,
    "rest": rest_reference,
}
