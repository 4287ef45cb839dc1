using System.Text;
using Newtonsoft.Json.Linq;
using Workflow.Jobs.Sample.Configuration;

namespace Workflow.Jobs.Sample.FakeApi;

/// <summary>
/// Endpoints to watch and steer the fake external API: <c>GET /api/fake-api</c> (counts) and
/// <c>POST /api/fake-api/failures</c> (<c>{"operation":"create_subscription","times":2}</c>: the next
/// two calls of that operation fail).
/// </summary>
internal static class FakeApiEndpoints
{
    private const int MaxBodyBytes = 4 * 1024;

    public static IEndpointRouteBuilder MapFakeApi(this IEndpointRouteBuilder app, SampleHostSettings settings)
    {
        var read = app.MapGroup("/api/fake-api").WithTags("Fake API");
        var write = app.MapGroup("/api/fake-api").WithTags("Fake API");
        if (settings.ReadPolicy is { } readPolicy)
        {
            read.RequireAuthorization(readPolicy);
        }

        if (settings.WritePolicy is { } writePolicy)
        {
            write.RequireAuthorization(writePolicy);
        }

        read.MapGet("/", (FakeExternalApi api) => FakeApiResults.Json(Stats(api)));
        write.MapPost("/failures", ArmAsync);
        return app;
    }

    private static async Task<IResult> ArmAsync(HttpRequest request, FakeExternalApi api, CancellationToken cancellationToken)
    {
        if (!FakeApiResults.IsJson(request))
        {
            return FakeApiResults.Problem(StatusCodes.Status415UnsupportedMediaType, "", "The request must be sent as JSON: Content-Type: application/json (or a +json type), in UTF-8.");
        }

        if (request.ContentLength > MaxBodyBytes)
        {
            return FakeApiResults.Problem(StatusCodes.Status413PayloadTooLarge, "", $"The request body is larger than {MaxBodyBytes} bytes.");
        }

        var buffer = new byte[MaxBodyBytes + 1];
        var length = 0;
        int read;
        while (length <= MaxBodyBytes && (read = await request.Body.ReadAsync(buffer.AsMemory(length), cancellationToken)) > 0)
        {
            length += read;
        }

        if (length > MaxBodyBytes)
        {
            return FakeApiResults.Problem(StatusCodes.Status413PayloadTooLarge, "", $"The request body is larger than {MaxBodyBytes} bytes.");
        }

        string text;
        try
        {
            text = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true).GetString(buffer, 0, length).TrimStart('\uFEFF');
        }
        catch (DecoderFallbackException)
        {
            return FakeApiResults.Problem(StatusCodes.Status400BadRequest, "", "The request body is not valid UTF-8.");
        }

        JObject body;
        try
        {
            body = WorkflowJson.ParseObject(text);
        }
        catch (WorkflowDataValidationException ex)
        {
            return FakeApiResults.Problem(StatusCodes.Status400BadRequest, ex.Errors);
        }

        var errors = new List<WorkflowDataError>();
        var operation = body["operation"] is JValue { Type: JTokenType.String } op ? op.Value<string>()! : null;
        if (operation is null || !FakeApiOperations.All.Contains(operation))
        {
            errors.Add(new WorkflowDataError("operation", $"Expected one of: {string.Join(", ", FakeApiOperations.All)}."));
        }

        // A JSON integer may be beyond long (99999999999999999999 is read as a BigInteger): compare without converting.
        var times = body["times"] is JValue { Type: JTokenType.Integer, Value: long t } ? t : -1;
        if (times is < 0 or > 100)
        {
            errors.Add(new WorkflowDataError("times", "Expected a whole number from 0 to 100 (times)."));
        }

        foreach (var property in body.Properties().Where(p => p.Name is not ("operation" or "times")))
        {
            errors.Add(new WorkflowDataError(property.Name, $"Unknown field '{property.Name}'."));
        }

        if (errors.Count > 0)
        {
            return FakeApiResults.Problem(StatusCodes.Status400BadRequest, errors);
        }

        api.ArmFailures(operation!, (int)times);
        return FakeApiResults.Json(Stats(api));
    }

    private static JObject Stats(FakeExternalApi api)
    {
        var stats = api.GetStats();
        return new JObject
        {
            ["customers"] = stats.Customers,
            ["subscriptions"] = stats.Subscriptions,
            ["users"] = stats.Users,
            ["emails"] = stats.Emails,
            ["reports"] = stats.Reports,
            ["calls"] = stats.Calls,
            ["simulatedFailures"] = stats.SimulatedFailures,
            ["armedFailures"] = JObject.FromObject(stats.ArmedFailures),
            ["operations"] = new JArray(FakeApiOperations.All),
        };
    }
}
