using System.Diagnostics;
using System.Text;
using Workflow.Jobs.IntegrationTests;

namespace Workflow.Jobs.ExistingApp.Tests;

/// <summary>
/// The libraries as packages: <c>dotnet pack</c> of every library under <c>src/</c> (a copy of the sources, so the
/// repository's build output is untouched) with a version no one else uses, then a small application that refers to
/// the packages (not to the projects) is built and runs one workflow to Succeeded on the test PostgreSQL. Packages
/// are restored into the test's own folder; third-party packages come from the machine's package folder, read-only.
/// </summary>
[NonParallelizable]
[Category("Packaging")]
public class PackagingTests
{
    private static readonly TimeSpan StepTimeout = TimeSpan.FromMinutes(4);

    [Test]
    public async Task PackedLibraries_RunAWorkflow_InAnApplicationThatReferencesThePackages()
    {
        var repository = FindRepository();
        var work = Directory.CreateTempSubdirectory("wj-packaging-");
        try
        {
            var version = $"0.0.0-packaging.{DateTime.UtcNow:yyyyMMddHHmmss}.g{Guid.NewGuid().ToString("N")[..12]}";
            var sources = Path.Combine(work.FullName, "repo");
            var feed = Path.Combine(work.FullName, "feed");
            var libraries = CopySources(repository, sources);
            var solution = Path.Combine(sources, "packages.slnx");
            await File.WriteAllTextAsync(solution,
                "<Solution>\n" + string.Concat(libraries.Select(p => $"  <Project Path=\"{Path.GetRelativePath(sources, p)}\" />\n")) + "</Solution>\n");

            await DotnetAsync(sources, "pack", solution, "-c", "Release", "-o", feed, $"-p:Version={version}", "--disable-build-servers", "-nologo");
            foreach (var library in libraries)
            {
                var id = Path.GetFileNameWithoutExtension(library);
                Assert.That(File.Exists(Path.Combine(feed, $"{id}.{version}.nupkg")), Is.True, $"package {id} {version}");
            }

            var app = Path.Combine(work.FullName, "app");
            WriteApplication(app, feed, Path.Combine(work.FullName, "packages"), version);
            var connectionString = await TestDatabases.CreateAsync("packaging");
            var output = await DotnetAsync(app, ("WORKFLOW_JOBS_APP_CONNECTION", connectionString), "run", "-c", "Release", "--disable-build-servers");

            Assert.That(output, Does.Contain("RESULT Hello, package!"));
            // The application was built against the packages, not the repository's projects.
            var restored = Directory.GetDirectories(Path.Combine(work.FullName, "packages"));
            Assert.That(restored.Select(Path.GetFileName), Does.Contain("workflow.jobs.hangfire"));
            Assert.That(Directory.Exists(Path.Combine(work.FullName, "packages", "workflow.jobs.hangfire", version)), Is.True);
        }
        finally
        {
            try
            {
                work.Delete(recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    private static string FindRepository()
    {
        for (var directory = new DirectoryInfo(TestContext.CurrentContext.TestDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "Workflow.Jobs.sln")))
            {
                return directory.FullName;
            }
        }

        throw new InvalidOperationException("The repository (Workflow.Jobs.sln) was not found above " + TestContext.CurrentContext.TestDirectory);
    }

    /// <summary>Copies the build files and every library project under src/ (not the sample); returns the copied project files.</summary>
    private static List<string> CopySources(string repository, string target)
    {
        Directory.CreateDirectory(target);
        foreach (var file in new[] { "Directory.Build.props", "Directory.Packages.props", "README.md", "global.json", ".editorconfig" })
        {
            var source = Path.Combine(repository, file);
            if (File.Exists(source))
            {
                File.Copy(source, Path.Combine(target, file));
            }
        }

        var projects = new List<string>();
        foreach (var directory in Directory.GetDirectories(Path.Combine(repository, "src")))
        {
            var name = Path.GetFileName(directory);
            if (name.EndsWith(".Sample", StringComparison.Ordinal) || !File.Exists(Path.Combine(directory, name + ".csproj")))
            {
                continue;
            }

            CopyDirectory(directory, Path.Combine(target, "src", name));
            projects.Add(Path.Combine(target, "src", name, name + ".csproj"));
        }

        return projects;
    }

    private static void CopyDirectory(string source, string target)
    {
        Directory.CreateDirectory(target);
        foreach (var file in Directory.GetFiles(source))
        {
            File.Copy(file, Path.Combine(target, Path.GetFileName(file)));
        }

        foreach (var directory in Directory.GetDirectories(source))
        {
            var name = Path.GetFileName(directory);
            if (name is "bin" or "obj")
            {
                continue;
            }

            CopyDirectory(directory, Path.Combine(target, name));
        }
    }

    private static void WriteApplication(string app, string feed, string packages, string version)
    {
        Directory.CreateDirectory(app);
        var machinePackages = Environment.GetEnvironmentVariable("NUGET_PACKAGES")
            ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        // The package sources of the machine (user configuration) plus the folder of the new packages. Restored packages
        // go to the test's folder; the machine's package folder is only read (a fallback folder), never written to.
        File.WriteAllText(Path.Combine(app, "NuGet.config"),
            $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <config>
                <add key="globalPackagesFolder" value="{packages}" />
              </config>
              <packageSources>
                <add key="workflow-jobs-packaging-test" value="{feed}" />
              </packageSources>
              <fallbackPackageFolders>
                <add key="machine" value="{machinePackages}" />
              </fallbackPackageFolders>
            </configuration>
            """);
        File.WriteAllText(Path.Combine(app, "PackagedApp.csproj"),
            $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <Nullable>enable</Nullable>
                <ImplicitUsings>enable</ImplicitUsings>
                <NoWarn>$(NoWarn);NU1603</NoWarn>
              </PropertyGroup>
              <ItemGroup>
                <PackageReference Include="Workflow.Jobs.Hangfire" Version="{version}" />
              </ItemGroup>
            </Project>
            """);
        File.WriteAllText(Path.Combine(app, "Program.cs"),
            """
            using Microsoft.Extensions.DependencyInjection;
            using Microsoft.Extensions.Hosting;
            using Microsoft.Extensions.Logging;
            using Newtonsoft.Json;
            using Workflow.Jobs;

            var connectionString = Environment.GetEnvironmentVariable("WORKFLOW_JOBS_APP_CONNECTION")!;
            var builder = Host.CreateApplicationBuilder();
            builder.Logging.SetMinimumLevel(LogLevel.Warning);
            builder.Services.AddWorkflowJobs(o => o.UseNpgsql(connectionString))
                .AddWorkflow<HelloWorkflow>()
                .AddHangfireJobs(o => o.WorkerCount = 2);
            using var host = builder.Build();
            await host.StartAsync();
            var client = host.Services.GetRequiredService<IWorkflowClient>();
            var id = await client.EnqueueAsync<HelloWorkflow>(new WorkflowInput(new HelloInput { Name = "package" }));
            var deadline = DateTime.UtcNow.AddSeconds(60);
            WorkflowRun? run;
            while ((run = await client.GetAsync(id))?.Status != WorkflowStatus.Succeeded)
            {
                if (DateTime.UtcNow > deadline)
                {
                    Console.WriteLine($"TIMEOUT run {id} is {run?.Status}");
                    return 1;
                }

                await Task.Delay(50);
            }

            Console.WriteLine("RESULT " + run.Output!["hello_output"]!["greeting"]);
            await host.StopAsync();
            return 0;

            [WorkflowKey("hello_input")]
            public sealed class HelloInput : WorkflowData
            {
                [JsonProperty("name")] public string Name { get; set; } = "";
            }

            [WorkflowKey("hello_output")]
            public sealed class HelloOutput : WorkflowData
            {
                [JsonProperty("greeting")] public string Greeting { get; set; } = "";
            }

            public sealed class HelloStep : WorkflowStep<HelloInput, HelloOutput>
            {
                protected override Task<HelloOutput> ProcessInputAsync(HelloInput input, StepContext context, CancellationToken cancellationToken)
                    => Task.FromResult(new HelloOutput { Greeting = $"Hello, {input.Name}!" });
            }

            public sealed class HelloWorkflow : WorkflowDefinition
            {
                public override IReadOnlyList<Type> Steps { get; } = [typeof(HelloStep)];
            }
            """);
    }

    private static Task<string> DotnetAsync(string directory, params string[] arguments) => DotnetAsync(directory, null, arguments);

    private static async Task<string> DotnetAsync(string directory, (string Name, string Value)? variable, params string[] arguments)
    {
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            WorkingDirectory = directory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        // The test host runs under MSBuild's environment; the child builds must find their own.
        foreach (var name in start.Environment.Keys.Where(k => k.StartsWith("MSBuild", StringComparison.OrdinalIgnoreCase)).ToList())
        {
            start.Environment.Remove(name);
        }

        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        start.Environment["DOTNET_NOLOGO"] = "1";
        if (variable is { } v)
        {
            start.Environment[v.Name] = v.Value;
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException("dotnet did not start");
        var output = new StringBuilder();
        var stdout = PumpAsync(process.StandardOutput, output);
        var stderr = PumpAsync(process.StandardError, output);
        using var timeout = new CancellationTokenSource(StepTimeout);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"dotnet {string.Join(' ', arguments)} took longer than {StepTimeout}:\n{output}");
        }

        await Task.WhenAll(stdout, stderr);
        Assert.That(process.ExitCode, Is.Zero, $"dotnet {string.Join(' ', arguments)} failed:\n{output}");
        return output.ToString();
    }

    private static async Task PumpAsync(StreamReader reader, StringBuilder output)
    {
        while (await reader.ReadLineAsync() is { } line)
        {
            lock (output)
            {
                output.AppendLine(line);
            }
        }
    }
}
