/** Typed calls from the generated OpenAPI types: `client.get("/api/v1/users/{user_id}", {path: {user_id}})`. */
import type { components, paths } from "./generated/api.js";

export type Schemas = components["schemas"];
export type Method = "get" | "put" | "post" | "delete" | "patch";
export type Operation<P extends keyof paths, M extends Method> = NonNullable<paths[P][M]>;

/** The paths that have method M. */
export type PathsWith<M extends Method> = {
  [P in keyof paths]: [Operation<P, M>] extends [never] ? never : P;
}[keyof paths];

type Parameters_<O> = O extends { parameters: infer X } ? X : never;

type PathOption<O> = Parameters_<O> extends { path: infer P } ? { path: P } : { path?: never };
type QueryOption<O> = Parameters_<O> extends { query?: infer Q } ? { query?: Exclude<Q, undefined> } : { query?: never };
type BodyOption<O> = O extends { requestBody: { content: { "application/json": infer B } } }
  ? { body: B }
  : O extends { requestBody?: { content: { "application/json": infer B } } }
    ? { body?: B }
    : { body?: never };

export interface CommonOptions {
  signal?: AbortSignal;
  headers?: Record<string, string>;
}

export type CallOptions<O> = PathOption<O> & QueryOption<O> & BodyOption<O> & CommonOptions;

/** The options argument is optional when nothing in it is required. */
export type CallArgs<O> = object extends CallOptions<O> ? [options?: CallOptions<O>] : [options: CallOptions<O>];

type Json<R> = R extends { content: { "application/json": infer B } } ? B : never;
type Success<O> = O extends { responses: infer R }
  ? R extends { 200: infer S }
    ? Json<S>
    : R extends { 201: infer S }
      ? Json<S>
      : R extends { 202: infer S }
        ? Json<S>
        : never
  : never;

type Unwrapped<B> = B extends { data?: infer D } ? ([Exclude<D, null | undefined>] extends [never] ? null : Exclude<D, null | undefined>) : B;

/** What a call resolves to: the envelope's `data` (the body itself for the JWKS). */
export type Data<P extends keyof paths, M extends Method> = Unwrapped<Success<Operation<P, M>>>;
