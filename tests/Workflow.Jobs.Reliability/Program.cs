Console.WriteLine("reliability worker: not written yet");
