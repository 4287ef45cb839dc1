using System.Buffers;
using System.Globalization;
using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Primitives;
using Microsoft.Net.Http.Headers;

namespace Workflow.Jobs.AspNetCore;

/// <summary>Request body checks: JSON media type, size limit while reading, UTF-8.</summary>
internal static class RequestBody
{
    /// <summary>
    /// Whether the request says its body is JSON: <c>application/json</c> or a <c>+json</c> type, in UTF-8.
    /// A missing Content-Type is not JSON: a browser sends a cross-site POST without a preflight only with
    /// form or text types (or none), so requiring JSON keeps such requests out.
    /// </summary>
    public static bool IsJson(HttpRequest request)
        => !string.IsNullOrEmpty(request.ContentType)
           && MediaTypeHeaderValue.TryParse(request.ContentType, out var media)
           && (media.MediaType.Equals("application/json", StringComparison.OrdinalIgnoreCase)
               || media.Suffix.Equals("json", StringComparison.OrdinalIgnoreCase))
           && (StringSegment.IsNullOrEmpty(media.Charset) || media.Charset.Equals("utf-8", StringComparison.OrdinalIgnoreCase));

    public static IResult UnsupportedMediaType()
        => ApiResults.Problem(StatusCodes.Status415UnsupportedMediaType, "Content-Type",
            "The request must be sent as JSON: Content-Type: application/json (or a +json type), in UTF-8.");

    /// <summary>Reads at most <paramref name="limit"/> bytes of UTF-8; more answers 413 without reading the rest.</summary>
    public static async Task<(string? Text, IResult? Error)> ReadAsync(HttpRequest request, int limit, CancellationToken cancellationToken)
    {
        var tooLarge = ApiResults.Problem(StatusCodes.Status413PayloadTooLarge, "",
            $"The request body is larger than {limit.ToString(CultureInfo.InvariantCulture)} bytes (WorkflowJobsApiOptions.MaxRequestBodyBytes).");
        if (request.ContentLength > limit)
        {
            return (null, tooLarge);
        }

        var buffer = ArrayPool<byte>.Shared.Rent(Math.Min(limit + 1, 64 * 1024));
        var total = new ArrayBufferWriter<byte>();
        try
        {
            int read;
            while ((read = await request.Body.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
            {
                if (total.WrittenCount + read > limit)
                {
                    return (null, tooLarge);
                }

                total.Write(buffer.AsSpan(0, read));
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        try
        {
            var text = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true).GetString(total.WrittenSpan);
            return (text.TrimStart('\uFEFF'), null);
        }
        catch (DecoderFallbackException)
        {
            return (null, ApiResults.Problem(StatusCodes.Status400BadRequest, "", "The request body is not valid UTF-8."));
        }
    }
}
