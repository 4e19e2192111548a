using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Azure.Core;

namespace M365TokenBroker.Client;

/// <summary>
/// An <see cref="TokenCredential"/> over the broker's <c>GET /api/token</c>: give it to any Azure SDK
/// client or the Microsoft Graph SDK as you would <c>DefaultAzureCredential</c>. Tokens are cached until
/// 5 minutes before they expire, one request is in flight per scope set, <c>upstream_unavailable</c>
/// is retried after <c>Retry-After</c> within <see cref="BrokerRetryOptions.MaxWait"/>; every other
/// failure is a <see cref="BrokerException"/>.
/// </summary>
public sealed class BrokerTokenCredential : TokenCredential
{
    private static readonly TimeSpan RefreshMargin = TimeSpan.FromMinutes(5);
    // One connection pool for every credential of the process, recycled so DNS changes are seen.
    private static readonly HttpClient Http = new(new SocketsHttpHandler
    {
        PooledConnectionLifetime = TimeSpan.FromMinutes(5),
        AllowAutoRedirect = false,
    })
    { Timeout = Timeout.InfiniteTimeSpan };

    private readonly BrokerCredentialOptions _options;
    private readonly string _tokenUrl;
    private readonly object _gate = new();
    private readonly Dictionary<string, Entry> _cache = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Task<Entry>> _inFlight = new(StringComparer.Ordinal);
    private volatile HashSet<string>? _own;

    private sealed record Entry(AccessToken Token, string Scope, string? Xoauth2);

    public BrokerTokenCredential(BrokerCredentialOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Url is null || (options.Url.Scheme != Uri.UriSchemeHttps && options.Url.Scheme != Uri.UriSchemeHttp))
            throw new ArgumentException("Url must be the broker's http(s) base URL.", nameof(options));
        if (string.IsNullOrEmpty(options.Connection))
            throw new ArgumentException("Connection is required.", nameof(options));
        if (options.Credential is not null && string.IsNullOrEmpty(options.ApiScope))
            throw new ArgumentException("ApiScope is required with Credential (e.g. api://broker/.default).", nameof(options));
        _options = options;
        var baseUrl = options.Url.GetLeftPart(UriPartial.Path).TrimEnd('/');
        if (baseUrl.EndsWith("/api", StringComparison.OrdinalIgnoreCase)) baseUrl = baseUrl[..^4];
        _tokenUrl = $"{baseUrl}/api/token";
    }

    /// <summary>With the function key (<c>CALLER_AUTH=key</c>).</summary>
    public BrokerTokenCredential(Uri url, string connection, string functionKey)
        : this(new BrokerCredentialOptions { Url = url, Connection = connection, FunctionKey = functionKey })
    {
    }

    public override AccessToken GetToken(TokenRequestContext requestContext, CancellationToken cancellationToken) =>
        GetTokenAsync(requestContext, cancellationToken).AsTask().GetAwaiter().GetResult();

    public override ValueTask<AccessToken> GetTokenAsync(TokenRequestContext requestContext, CancellationToken cancellationToken)
    {
        var asked = Scopes.Normalize(requestContext.Scopes ?? Array.Empty<string>());
        var own = _own;
        if (own is not null)
        {
            var hit = Fresh(Key(asked, own), xoauth2: false);
            if (hit is not null) return new ValueTask<AccessToken>(hit.Token);
        }
        return new ValueTask<AccessToken>(GetEntryAsync(asked, false, cancellationToken).ContinueWith(
            t => t.GetAwaiter().GetResult().Token, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default));
    }

    /// <summary>
    /// The base64 SASL XOAUTH2 string for IMAP/POP/SMTP (MailKit's <c>SaslMechanismOAuth2</c> builds the
    /// same from user and token). With <paramref name="user"/>, built here from the token (app-only
    /// connections name the mailbox so); without, the broker builds it for the connected account.
    /// </summary>
    public async Task<string> Xoauth2Async(string? user = null, IEnumerable<string>? scopes = null, CancellationToken cancellationToken = default)
    {
        var asked = Scopes.Normalize(scopes ?? Array.Empty<string>());
        if (user is not null)
        {
            var entry = await GetEntryAsync(asked, false, cancellationToken).ConfigureAwait(false);
            return Convert.ToBase64String(Encoding.UTF8.GetBytes($"user={user}\u0001auth=Bearer {entry.Token.Token}\u0001\u0001"));
        }
        return (await GetEntryAsync(asked, true, cancellationToken).ConfigureAwait(false)).Xoauth2
            ?? throw new BrokerException("invalid_response", "The broker answered format=xoauth2 without an xoauth2 string.", 200);
    }

    /// <summary>Synchronous <see cref="Xoauth2Async"/>.</summary>
    public string Xoauth2(string? user = null, IEnumerable<string>? scopes = null, CancellationToken cancellationToken = default) =>
        Xoauth2Async(user, scopes, cancellationToken).GetAwaiter().GetResult();

    private static string Key(string[] asked, HashSet<string> own) =>
        Scopes.IsOwn(asked, own) ? "" : string.Join(' ', asked.OrderBy(s => s, StringComparer.Ordinal));

    private Entry? Fresh(string key, bool xoauth2)
    {
        lock (_gate)
        {
            if (!_cache.TryGetValue(key, out var entry)) return null;
            if (entry.Token.ExpiresOn - RefreshMargin <= DateTimeOffset.UtcNow) return null;
            return xoauth2 && entry.Xoauth2 is null ? null : entry;
        }
    }

    private async Task<Entry> GetEntryAsync(string[] asked, bool xoauth2, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var own = _own;
        if (own is null && asked.Length > 0)
        {
            // Which scopes are the connection's own is known only from an answer without scope=.
            await Flight("", false, cancellationToken).ConfigureAwait(false);
            own = _own!;
        }
        var key = own is null ? "" : Key(asked, own);
        return Fresh(key, xoauth2) ?? await Flight(key, xoauth2, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>One request per (scope set, format) at a time; each caller may give up on it alone.</summary>
    private Task<Entry> Flight(string key, bool xoauth2, CancellationToken cancellationToken)
    {
        var flightKey = xoauth2 ? key + "#xoauth2" : key;
        Task<Entry> shared;
        lock (_gate)
        {
            if (!_inFlight.TryGetValue(flightKey, out shared!))
            {
                shared = FetchWithRetryAsync(key, xoauth2);
                _inFlight[flightKey] = shared;
                _ = shared.ContinueWith(_ =>
                {
                    lock (_gate) _inFlight.Remove(flightKey);
                }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            }
        }
        return shared.WaitAsync(cancellationToken);
    }

    private async Task<Entry> FetchWithRetryAsync(string key, bool xoauth2)
    {
        await Task.Yield();
        var started = DateTimeOffset.UtcNow;
        while (true)
        {
            try
            {
                var entry = await RequestAsync(key, xoauth2).ConfigureAwait(false);
                lock (_gate)
                {
                    if (key.Length == 0) _own = Scopes.OwnSet(entry.Scope);
                    _cache[key] = entry;
                }
                return entry;
            }
            catch (BrokerException e) when (e.Code == "upstream_unavailable" && e.RetryAfter is { } after)
            {
                // At least a second: a "Retry-After: 0" loop would hammer a broker that is already down.
                var wait = after < TimeSpan.FromSeconds(1) ? TimeSpan.FromSeconds(1) : after;
                if (DateTimeOffset.UtcNow - started + wait > _options.Retry.MaxWait) throw;
                await Task.Delay(wait).ConfigureAwait(false);
            }
        }
    }

    private async Task<Entry> RequestAsync(string key, bool xoauth2)
    {
        var query = $"?connection={Uri.EscapeDataString(_options.Connection)}";
        if (key.Length > 0) query += $"&scope={Uri.EscapeDataString(key)}";
        if (xoauth2) query += "&format=xoauth2";
        using var request = new HttpRequestMessage(HttpMethod.Get, _tokenUrl + query);
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
        if (_options.Credential is not null)
        {
            AccessToken api;
            try
            {
                using var apiTimeout = new CancellationTokenSource(_options.Retry.AttemptTimeout);
                api = await _options.Credential.GetTokenAsync(new TokenRequestContext(new[] { _options.ApiScope! }), apiTimeout.Token).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                throw new BrokerException("caller_credential_failed", $"The credential for the broker's API could not get a token for {_options.ApiScope}.", 0, inner: e);
            }
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", api.Token);
        }
        else if (_options.FunctionKey is not null)
        {
            request.Headers.Add("x-functions-key", _options.FunctionKey);
        }
        var where = $"{_tokenUrl}?connection={_options.Connection}";
        var timeoutMs = (int)_options.Retry.AttemptTimeout.TotalMilliseconds;
        using var timeout = new CancellationTokenSource(_options.Retry.AttemptTimeout);
        HttpResponseMessage response;
        try
        {
            response = await Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (timeout.IsCancellationRequested && e is OperationCanceledException or HttpRequestException)
        {
            throw new BrokerException("broker_timeout", $"The broker at {where} did not answer within {timeoutMs} ms.", 0, inner: e);
        }
        catch (HttpRequestException e)
        {
            throw new BrokerException("broker_unreachable", $"The broker at {where} could not be reached ({e.HttpRequestError}).", 0, inner: e);
        }
        using (response)
        {
            var status = (int)response.StatusCode;
            string text;
            try
            {
                text = await response.Content.ReadAsStringAsync(timeout.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (timeout.IsCancellationRequested && e is OperationCanceledException or HttpRequestException or IOException)
            {
                throw new BrokerException("broker_timeout", $"The broker at {where} did not answer completely within {timeoutMs} ms.", 0, inner: e);
            }
            catch (Exception e) when (e is HttpRequestException or IOException)
            {
                throw new BrokerException("invalid_response", $"The broker at {where} answered HTTP {status} but broke off before the end of the body (truncated).", status, inner: e);
            }
            return status == 200 ? ReadToken(status, response, text) : throw ReadProblem(status, response, text);
        }
    }

    private static JsonElement? ParseJson(string text)
    {
        try
        {
            using var doc = JsonDocument.Parse(text);
            return doc.RootElement.Clone();
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static string ContentType(HttpResponseMessage response) =>
        response.Content.Headers.ContentType?.MediaType ?? "no content type";

    private static Entry ReadToken(int status, HttpResponseMessage response, string text)
    {
        BrokerException Bad(string what) => new("invalid_response", $"The broker answered HTTP {status} but {what}.", status);
        var body = ParseJson(text);
        if (body is null)
            throw Bad(text.Length == 0 ? "with an empty body" : $"with a body that is not JSON ({ContentType(response)})");
        if (body.Value.ValueKind != JsonValueKind.Object) throw Bad("not with a JSON object");
        var root = body.Value;
        if (!root.TryGetProperty("access_token", out var at) || at.ValueKind != JsonValueKind.String || at.GetString()!.Length == 0)
            throw Bad("without an access_token");
        DateTimeOffset expiresOn;
        if (root.TryGetProperty("expires_on", out var on) && ReadNumber(on) is { } onSec && onSec > 0)
            expiresOn = DateTimeOffset.FromUnixTimeSeconds(onSec);
        else if (root.TryGetProperty("expires_in", out var inn) && ReadNumber(inn) is { } inSec)
            expiresOn = DateTimeOffset.UtcNow.AddSeconds(inSec);
        else throw Bad("without a readable expires_on");
        var scope = root.TryGetProperty("scope", out var sc) && sc.ValueKind == JsonValueKind.String ? sc.GetString()! : "";
        var xoauth2 = root.TryGetProperty("xoauth2", out var x) && x.ValueKind == JsonValueKind.String ? x.GetString() : null;
        // RefreshOn: SDK auth policies that cache on their own ask again when this cache would.
        return new Entry(new AccessToken(at.GetString()!, expiresOn, expiresOn - RefreshMargin, "Bearer"), scope, xoauth2);
    }

    private static long? ReadNumber(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Number when e.TryGetInt64(out var n) => n,
        JsonValueKind.String when long.TryParse(e.GetString(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) => n,
        _ => null,
    };

    private static TimeSpan? RetryAfter(HttpResponseMessage response)
    {
        var header = response.Headers.RetryAfter;
        if (header?.Delta is { } delta) return delta;
        if (header?.Date is { } date) return date - DateTimeOffset.UtcNow < TimeSpan.Zero ? TimeSpan.Zero : date - DateTimeOffset.UtcNow;
        return null;
    }

    private static BrokerException ReadProblem(int status, HttpResponseMessage response, string text)
    {
        var retryAfter = RetryAfter(response);
        var contentType = ContentType(response);
        var problem = contentType.Contains("json", StringComparison.OrdinalIgnoreCase) ? ParseJson(text) : null;
        if (problem is not { ValueKind: JsonValueKind.Object } p || !p.TryGetProperty("code", out var codeEl) || codeEl.ValueKind != JsonValueKind.String)
        {
            // Azure's Functions host refuses a wrong function key itself, with an empty 401.
            if (status == 401)
                return new BrokerException("unauthorized",
                    "The broker refused the credentials (HTTP 401): a wrong or missing function key, or a caller token it does not accept.", status);
            var what = text.Length == 0 ? "an empty body" : $"{contentType} instead of problem+json";
            return new BrokerException("invalid_response",
                $"The broker answered HTTP {status} with {what}: something in front of it (a proxy, the platform) answered, or it is not the broker.",
                status, retryAfter: retryAfter);
        }
        string? Str(string name) => p.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
        var code = codeEl.GetString()!;
        BrokerRemedy? remedy = null;
        if (p.TryGetProperty("remedy", out var r) && r.ValueKind == JsonValueKind.Object && r.TryGetProperty("kind", out var kind) && kind.ValueKind == JsonValueKind.String)
            remedy = new BrokerRemedy(kind.GetString()!, r.TryGetProperty("text", out var t) ? t.ToString() : "");
        var message = $"{code} (HTTP {status}): {Str("detail") ?? Str("title") ?? code}{(remedy is null ? "" : $" What to do: {remedy.Text}")}";
        return new BrokerException(code, message, status, remedy, retryAfter, Str("consentUrl"));
    }
}
