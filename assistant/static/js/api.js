// Calls to the JSON API: the one place that adds the token and turns every failure into an ApiError.

const TOKEN_KEY = "keras-troubleshooter.token";

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export const token = {
  get: () => localStorage.getItem(TOKEN_KEY) || "",
  set: (value) => localStorage.setItem(TOKEN_KEY, value),
};

/** Send a request; resolves to the parsed JSON, or rejects with the API's own error code and message. */
export async function api(path, { method = "GET", json, form } = {}) {
  const headers = { Accept: "application/json" };
  if (token.get()) headers.Authorization = `Bearer ${token.get()}`;
  let body = form;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  }
  let response;
  try {
    response = await fetch(path, { method, headers, body });
  } catch {
    throw new ApiError(0, "network", "The service could not be reached. Check that it is running, then try again.");
  }
  let data = null;
  try {
    data = JSON.parse(await response.text());
  } catch {
    // Not JSON: a proxy's page or a cut-off answer; the status below says what went wrong.
  }
  if (!response.ok) {
    const error = data && data.error;
    throw new ApiError(response.status, error ? error.code : "http_error",
      error ? error.message : `The service answered ${response.status} ${response.statusText}.`);
  }
  if (data === null) throw new ApiError(response.status, "bad_response", "The service sent an answer this page cannot read.");
  return data;
}
