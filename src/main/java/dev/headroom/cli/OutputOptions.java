package dev.headroom.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import picocli.CommandLine.Option;

/** --json and --verbose, shared by every command (Main reads --verbose itself when printing errors). */
final class OutputOptions {
    @Option(names = "--json", description = "Machine-readable output on stdout")
    boolean json;

    @Option(names = {"-v", "--verbose"}, description = "Stack traces on errors")
    boolean verbose;

    static void printJson(Object value) throws com.fasterxml.jackson.core.JsonProcessingException {
        System.out.println(new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValueAsString(value));
    }
}
