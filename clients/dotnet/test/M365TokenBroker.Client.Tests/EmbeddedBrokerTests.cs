using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Azure.Core;
using Xunit;

namespace M365TokenBroker.Client.Tests;

/// <summary>BrokerTokenCredential against the real broker (embedded host, sandbox connection, its Graph-like /me).</summary>
public sealed class EmbeddedBrokerTests(EmbeddedBroker broker) : IClassFixture<EmbeddedBroker>
{
    private static readonly HttpClient Http = new();

    [Fact]
    public async Task ATokenFromTheCredentialReadsMe()
    {
        // docs/clients.md, ".NET"
        var credential = new BrokerTokenCredential(new BrokerCredentialOptions
        {
            Url = broker.Url,
            Connection = "sandbox",
            FunctionKey = EmbeddedBroker.FunctionKey,
        });
        var token = await credential.GetTokenAsync(new TokenRequestContext(new[] { "https://graph.microsoft.com/.default" }), default);

        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(broker.Url, "/sandbox/graph/v1.0/me"));
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token.Token);
        using var response = await Http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var me = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal(EmbeddedBroker.Account, me.RootElement.GetProperty("userPrincipalName").GetString());

        // Cached: the same token, synchronously too; and never printed by the broker.
        Assert.Equal(token.Token, credential.GetToken(new TokenRequestContext(new[] { "User.Read" }), default).Token);
        Assert.True(token.ExpiresOn > DateTimeOffset.UtcNow.AddMinutes(5));
        Assert.DoesNotContain(token.Token, broker.Output);
    }

    [Fact]
    public async Task Xoauth2NamesTheConnectedAccount()
    {
        var credential = new BrokerTokenCredential(broker.Url, "sandbox", EmbeddedBroker.FunctionKey);
        var sasl = Encoding.UTF8.GetString(Convert.FromBase64String(await credential.Xoauth2Async()));
        var token = await credential.GetTokenAsync(new TokenRequestContext(Array.Empty<string>()), default);
        Assert.Equal($"user={EmbeddedBroker.Account}\u0001auth=Bearer {token.Token}\u0001\u0001", sasl);
    }

    [Fact]
    public async Task TheBrokersProblemsAreBrokerExceptions()
    {
        var credential = new BrokerTokenCredential(broker.Url, "sandbox", EmbeddedBroker.FunctionKey);
        var scope = await Assert.ThrowsAsync<BrokerException>(() =>
            credential.GetTokenAsync(new TokenRequestContext(new[] { "https://outlook.office.com/IMAP.AccessAsUser.All" }), default).AsTask());
        Assert.Equal("scope_not_allowed", scope.Code);
        Assert.Equal(403, scope.Status);

        var unknown = await Assert.ThrowsAsync<BrokerException>(() =>
            new BrokerTokenCredential(broker.Url, "nope", EmbeddedBroker.FunctionKey).GetTokenAsync(new TokenRequestContext(Array.Empty<string>()), default).AsTask());
        Assert.Equal("unknown_connection", unknown.Code);
        Assert.Equal(404, unknown.Status);

        const string wrongKey = "not-the-key-0123456789";
        var unauthorized = await Assert.ThrowsAsync<BrokerException>(() =>
            new BrokerTokenCredential(broker.Url, "sandbox", wrongKey).GetTokenAsync(new TokenRequestContext(Array.Empty<string>()), default).AsTask());
        Assert.Equal("unauthorized", unauthorized.Code);
        Assert.Equal(401, unauthorized.Status);
        Assert.DoesNotContain(wrongKey, unauthorized.Message);
    }
}
