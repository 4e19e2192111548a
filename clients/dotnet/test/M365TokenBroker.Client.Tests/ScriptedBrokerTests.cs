using System.Diagnostics;
using System.Text;
using Azure.Core;
using Xunit;
using Xunit.Abstractions;

namespace M365TokenBroker.Client.Tests;

/// <summary>Cache, single flight, the scope rule, retry on 503 and every kind of bad answer, against a scripted broker.</summary>
public sealed class ScriptedBrokerTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const string Key = "fk-secret-function-key-0123456789";
    private ScriptedBroker _fake = null!;

    public Task InitializeAsync()
    {
        _fake = new ScriptedBroker();
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _fake.DisposeAsync();

    private BrokerTokenCredential Credential(TimeSpan? maxWait = null, TimeSpan? attemptTimeout = null) => new(new BrokerCredentialOptions
    {
        Url = _fake.Url,
        Connection = "mail",
        FunctionKey = Key,
        Retry = new BrokerRetryOptions
        {
            MaxWait = maxWait ?? TimeSpan.FromSeconds(30),
            AttemptTimeout = attemptTimeout ?? TimeSpan.FromSeconds(10),
        },
    });

    private static TokenRequestContext Ctx(params string[] scopes) => new(scopes);

    private static async Task<BrokerException> Failure(Func<Task> act)
    {
        var e = await Assert.ThrowsAsync<BrokerException>(act);
        Assert.DoesNotContain(Key, e.Message);
        Assert.DoesNotContain("tok-", e.Message);
        return e;
    }

    [Fact]
    public async Task SendsTheKeyCachesAndOmitsScopeForTheOwnScopes()
    {
        var credential = Credential();
        var first = await credential.GetTokenAsync(Ctx(), default);
        var request = Assert.Single(_fake.Requests);
        Assert.Equal(Key, request.Headers["x-functions-key"]);
        Assert.Equal("mail", request.Query["connection"]);
        Assert.False(request.Query.ContainsKey("scope"));
        Assert.True(first.ExpiresOn > DateTimeOffset.UtcNow.AddMinutes(58));
        foreach (var scopes in new[] { new[] { "https://graph.microsoft.com/User.Read" }, new[] { "User.Read", "mail.read" }, new[] { "https://graph.microsoft.com/.default" } })
        {
            Assert.Equal(first.Token, (await credential.GetTokenAsync(Ctx(scopes), default)).Token);
        }
        Assert.Equal(first.Token, credential.GetToken(Ctx(), default).Token);
        Assert.Single(_fake.Requests);
    }

    [Fact]
    public async Task AsksAgainForATokenThatExpiresWithinFiveMinutes()
    {
        _fake.Handler = (_, _, s) => ScriptedBroker.WriteJson(s, 200, ScriptedBroker.TokenBody(lifetimeSec: 299));
        var credential = Credential();
        var a = await credential.GetTokenAsync(Ctx(), default);
        var b = await credential.GetTokenAsync(Ctx(), default);
        Assert.NotEqual(a.Token, b.Token);
        Assert.Equal(2, _fake.Requests.Count);
    }

    [Fact]
    public async Task OtherScopesGoAsScopeParameter()
    {
        _fake.Handler = (r, _, s) => ScriptedBroker.WriteJson(s, 200, r.Query.TryGetValue("scope", out var sc)
            ? ScriptedBroker.TokenBody(scope: sc)
            : ScriptedBroker.TokenBody());
        var credential = Credential();
        const string imap = "https://outlook.office.com/IMAP.AccessAsUser.All";
        var a = await credential.GetTokenAsync(Ctx(imap), default);
        Assert.Equal(a.Token, (await credential.GetTokenAsync(Ctx(imap), default)).Token);
        Assert.Equal(new[] { null, imap }, _fake.Requests.Select(r => r.Query.GetValueOrDefault("scope")).ToArray());
    }

    [Fact]
    public async Task ConcurrentCallsOnAColdCacheCauseOneRequest()
    {
        _fake.Handler = async (_, _, s) =>
        {
            await Task.Delay(100);
            await ScriptedBroker.WriteJson(s, 200, ScriptedBroker.TokenBody());
        };
        var credential = Credential();
        // A few synchronous callers among them (sync-over-async: each holds a pool thread while it waits).
        var tokens = await Task.WhenAll(Enumerable.Range(0, 100).Select(i =>
            i % 25 == 0 ? Task.Run(() => credential.GetToken(Ctx(), default)) : credential.GetTokenAsync(Ctx(), default).AsTask()));
        Assert.Single(_fake.Requests);
        Assert.Single(tokens.Select(t => t.Token).Distinct());
        var watch = Stopwatch.StartNew();
        for (var i = 0; i < 100_000; i++) await credential.GetTokenAsync(Ctx(), default);
        Assert.Single(_fake.Requests);
        output.WriteLine($"cached GetTokenAsync: {watch.Elapsed.TotalMicroseconds / 100_000:F3} µs/call");
    }

    [Fact]
    public async Task RetriesUpstreamUnavailableAfterRetryAfter()
    {
        _fake.Handler = (_, n, s) => n == 1
            ? ScriptedBroker.WriteJson(s, 503, """{"code":"upstream_unavailable","status":503,"detail":"Entra is down."}""", "retry-after: 1\r\n")
            : ScriptedBroker.WriteJson(s, 200, ScriptedBroker.TokenBody());
        var watch = Stopwatch.StartNew();
        var token = await Credential(maxWait: TimeSpan.FromSeconds(5)).GetTokenAsync(Ctx(), default);
        Assert.StartsWith("tok-", token.Token);
        Assert.Equal(2, _fake.Requests.Count);
        Assert.True(watch.ElapsedMilliseconds >= 950);
    }

    [Fact]
    public async Task GivesUpWhenRetryAfterExceedsTheBoundedWait()
    {
        _fake.Handler = (_, _, s) => ScriptedBroker.WriteJson(s, 503,
            """{"code":"upstream_unavailable","status":503,"detail":"Throttled.","remedy":{"kind":"wait","text":"Nothing to do."}}""", "retry-after: 30\r\n");
        var e = await Failure(() => Credential(maxWait: TimeSpan.FromSeconds(2)).GetTokenAsync(Ctx(), default).AsTask());
        Assert.Equal("upstream_unavailable", e.Code);
        Assert.Equal(503, e.Status);
        Assert.Equal(TimeSpan.FromSeconds(30), e.RetryAfter);
        Assert.Equal(new BrokerRemedy("wait", "Nothing to do."), e.Remedy);
        Assert.Single(_fake.Requests);
    }

    [Fact]
    public async Task OtherProblemsAreBrokerExceptionsWithCodeStatusRemedy()
    {
        _fake.Handler = (_, _, s) => ScriptedBroker.WriteJson(s, 409,
            """{"title":"Consent required","status":409,"code":"consent_required","detail":"Connection \"mail\" was never connected.","consentUrl":"/api/start?connection=mail","remedy":{"kind":"reconnect","text":"Ana connects it again."}}""");
        var e = await Failure(() => Credential().GetTokenAsync(Ctx(), default).AsTask());
        Assert.Equal("consent_required", e.Code);
        Assert.Equal(409, e.Status);
        Assert.Equal("reconnect", e.Remedy!.Kind);
        Assert.Equal("/api/start?connection=mail", e.ConsentUrl);
        Assert.Null(e.RetryAfter);
        Assert.Contains("never connected", e.Message);
    }

    [Theory]
    [InlineData(503, "application/problem+json", """{"code":"upstream_unavailable","status":503}""", "upstream_unavailable")]
    [InlineData(502, "text/html", "<html><body>Bad gateway</body></html>", "invalid_response")]
    [InlineData(200, "text/html", "<html>login</html>", "invalid_response")]
    [InlineData(200, "application/json", """{"access_tok""", "invalid_response")]
    [InlineData(200, "application/json", """{"token_type":"Bearer"}""", "invalid_response")]
    [InlineData(200, "application/json", """{"access_token":"tok-noexpiry"}""", "invalid_response")]
    [InlineData(500, "text/plain", "", "invalid_response")]
    [InlineData(401, "text/plain", "", "unauthorized")]
    public async Task BadAnswersAreBrokerExceptionsAtOnce(int status, string type, string body, string code)
    {
        _fake.Handler = (_, _, s) => ScriptedBroker.WriteRaw(s, status, type, body);
        var e = await Failure(() => Credential().GetTokenAsync(Ctx(), default).AsTask());
        Assert.Equal(code, e.Code);
        Assert.Equal(status, e.Status);
        Assert.Single(_fake.Requests);
        if (body.Length > 0 && code == "invalid_response") Assert.DoesNotContain(body, e.Message);
    }

    [Fact]
    public async Task ATruncatedBodyIsInvalidResponse()
    {
        _fake.Handler = async (_, _, s) =>
        {
            var body = ScriptedBroker.TokenBody();
            await s.WriteAsync(Encoding.ASCII.GetBytes($"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {body.Length + 100}\r\n\r\n{body[..40]}"));
            await s.FlushAsync();
            await Task.Delay(20);
            s.Close();
        };
        var e = await Failure(() => Credential().GetTokenAsync(Ctx(), default).AsTask());
        Assert.Equal("invalid_response", e.Code);
        Assert.Contains("truncated", e.Message);
    }

    [Fact]
    public async Task SilenceIsATimeoutNotAHang()
    {
        _fake.Handler = (_, _, _) => Task.Delay(Timeout.Infinite);
        var watch = Stopwatch.StartNew();
        var e = await Failure(() => Credential(attemptTimeout: TimeSpan.FromMilliseconds(300)).GetTokenAsync(Ctx(), default).AsTask());
        Assert.Equal("broker_timeout", e.Code);
        Assert.True(watch.ElapsedMilliseconds < 3000);
    }

    [Fact]
    public async Task ARefusedConnectionIsBrokerUnreachable()
    {
        var credential = new BrokerTokenCredential(new Uri("http://127.0.0.1:1"), "mail", Key);
        var e = await Failure(() => credential.GetTokenAsync(Ctx(), default).AsTask());
        Assert.Equal("broker_unreachable", e.Code);
    }

    [Fact]
    public async Task CancellationEndsOneCallerOnlyAndAtOnce()
    {
        _fake.Handler = async (_, _, s) =>
        {
            await Task.Delay(500);
            await ScriptedBroker.WriteJson(s, 200, ScriptedBroker.TokenBody());
        };
        var credential = Credential();
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(50));
        var mine = credential.GetTokenAsync(Ctx(), cts.Token).AsTask();
        var theirs = credential.GetTokenAsync(Ctx(), default).AsTask();
        var watch = Stopwatch.StartNew();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => mine);
        Assert.True(watch.ElapsedMilliseconds < 400);
        Assert.StartsWith("tok-", (await theirs).Token);
        Assert.Single(_fake.Requests);
    }

    [Fact]
    public async Task AuthenticatesWithACredentialForTheBrokerApi()
    {
        var api = new StaticCredential("api-token-0123456789");
        var credential = new BrokerTokenCredential(new BrokerCredentialOptions
        {
            Url = new Uri(_fake.Url, "/api/"),
            Connection = "mail",
            Credential = api,
            ApiScope = "api://broker/.default",
        });
        await credential.GetTokenAsync(Ctx(), default);
        var request = Assert.Single(_fake.Requests);
        Assert.Equal("Bearer api-token-0123456789", request.Headers["authorization"]);
        Assert.False(request.Headers.ContainsKey("x-functions-key"));
        Assert.Equal(new[] { "api://broker/.default" }, api.Asked.Single());
        Assert.Throws<ArgumentException>(() => new BrokerTokenCredential(new BrokerCredentialOptions { Url = _fake.Url, Connection = "mail", Credential = api }));
    }

    [Fact]
    public async Task Xoauth2FromTheBrokerOrBuiltForAUser()
    {
        _fake.Handler = (r, _, s) =>
        {
            var token = ScriptedBroker.NewToken();
            var body = ScriptedBroker.TokenBody(token: token);
            if (r.Query.GetValueOrDefault("format") == "xoauth2")
            {
                var x = Convert.ToBase64String(Encoding.UTF8.GetBytes($"user=ana@contoso.com\u0001auth=Bearer {token}\u0001\u0001"));
                body = body.TrimEnd('}') + $",\"xoauth2\":\"{x}\"}}";
            }
            return ScriptedBroker.WriteJson(s, 200, body);
        };
        var credential = Credential();
        var own = Encoding.UTF8.GetString(Convert.FromBase64String(await credential.Xoauth2Async()));
        Assert.Matches("^user=ana@contoso\\.com\u0001auth=Bearer tok-\\S+\u0001\u0001$", own);
        Assert.Contains((await credential.GetTokenAsync(Ctx(), default)).Token, own);
        var desk = Encoding.UTF8.GetString(Convert.FromBase64String(credential.Xoauth2(user: "desk1@contoso.com")));
        Assert.StartsWith("user=desk1@contoso.com\u0001auth=Bearer tok-", desk);
        Assert.Single(_fake.Requests);
    }

    private sealed class StaticCredential(string token) : TokenCredential
    {
        public List<string[]> Asked { get; } = new();

        public override AccessToken GetToken(TokenRequestContext requestContext, CancellationToken cancellationToken)
        {
            Asked.Add(requestContext.Scopes);
            return new AccessToken(token, DateTimeOffset.UtcNow.AddHours(1));
        }

        public override ValueTask<AccessToken> GetTokenAsync(TokenRequestContext requestContext, CancellationToken cancellationToken) =>
            new(GetToken(requestContext, cancellationToken));
    }
}
