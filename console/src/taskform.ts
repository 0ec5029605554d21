/**
 * A run form typed from a task's parameters (`GET /tasks`: each one's JSON type, default and
 * kind): the control each one gets, and the `args`/`kwargs` its values make. The server still
 * checks the arguments (a 422 `bad_task_arguments` names the parameter at fault).
 */
import type { Schemas } from "@multidb/client";

export type Parameter = Schemas["TaskParameter"];
/** The fields' text (inputs, selects, JSON textareas) and the checkboxes' states, by parameter. */
export interface Values {
  text: Record<string, string>;
  checked: Record<string, boolean>;
}

export type Control = "checkbox" | "number" | "select" | "text" | "json";

export function control(p: Parameter): Control {
  if (p.enum) return "select";
  if (p.type === "boolean") return "checkbox";
  if (p.type === "integer" || p.type === "number") return "number";
  if (p.type === "string") return "text";
  return "json"; // array, object, or any JSON value
}

/** The form's starting values: each parameter's default where it has one. */
export function initial(parameters: Parameter[]): Values {
  const values: Values = { text: {}, checked: {} };
  for (const p of parameters) {
    const value = p.required ? null : (p.default ?? null);
    const kind = control(p);
    if (kind === "checkbox") values.checked[p.name] = value === true;
    else if (kind === "select" || kind === "json") values.text[p.name] = value === null ? "" : JSON.stringify(value);
    else values.text[p.name] = value === null ? "" : String(value);
  }
  return values;
}

/** A field the page could not read as its type (invalid JSON): shown next to it. */
export class FieldProblem extends Error {
  readonly field: string;

  constructor(field: string, message: string) {
    super(message);
    this.field = field;
  }
}

const ABSENT = Symbol("absent");

function value(p: Parameter, values: Values, invalidJson: string): unknown {
  const kind = control(p);
  if (kind === "checkbox") return values.checked[p.name] === true;
  // String(): Vue's v-model already gives a number input's value as a number
  const text = String(values.text[p.name] ?? "");
  if (text.trim() === "") return ABSENT; // left out: the default, or the server says it is missing
  if (kind === "number") return Number(text);
  if (kind === "text") return text;
  try {
    return JSON.parse(text); // a select's options are JSON too
  } catch {
    throw new FieldProblem(p.name, invalidJson);
  }
}

/**
 * The run's arguments: positional-only parameters (and, when `*args` has items, every parameter
 * before it) in `args`, the rest by name in `kwargs`, `**kwargs` merged in. A field left empty
 * is left out.
 */
export function argumentsOf(
  parameters: Parameter[],
  values: Values,
  invalidJson: string,
): { args: unknown[]; kwargs: Record<string, unknown> } {
  const read = new Map(parameters.map((p) => [p.name, value(p, values, invalidJson)]));
  const extra = parameters.find((p) => p.kind === "var_positional");
  const spread = extra !== undefined && Array.isArray(read.get(extra.name)) && (read.get(extra.name) as unknown[]).length > 0;
  const args: unknown[] = [];
  const kwargs: Record<string, unknown> = {};
  let positional = true; // an empty positional field ends the positional arguments
  for (const p of parameters) {
    const v = read.get(p.name);
    if (p.kind === "var_positional") {
      if (spread && positional) args.push(...(v as unknown[]));
    } else if (p.kind === "var_keyword") {
      if (v !== ABSENT && typeof v === "object" && v !== null) Object.assign(kwargs, v);
      else if (v !== ABSENT) throw new FieldProblem(p.name, invalidJson);
    } else if (p.kind === "positional_only" || (spread && p.kind === "positional_or_keyword")) {
      if (v === ABSENT) positional = false;
      else if (positional) args.push(v);
      else kwargs[p.name] = v; // the server answers which is missing
    } else if (v !== ABSENT) {
      kwargs[p.name] = v;
    }
  }
  return { args, kwargs };
}
