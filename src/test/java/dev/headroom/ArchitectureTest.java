package dev.headroom;

import static com.tngtech.archunit.library.Architectures.layeredArchitecture;
import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;

import com.tngtech.archunit.core.domain.JavaClasses;
import com.tngtech.archunit.core.importer.ClassFileImporter;
import com.tngtech.archunit.core.importer.ImportOption;
import org.junit.jupiter.api.Test;

/** Keeps DESIGN.md's layer arrows pointing down. */
class ArchitectureTest {
    private static final JavaClasses CLASSES = new ClassFileImporter()
            .withImportOption(ImportOption.Predefined.DO_NOT_INCLUDE_TESTS)
            .importPackages("dev.headroom");

    @Test
    void layersDependOnlyDownwards() {
        layeredArchitecture().consideringOnlyDependenciesInLayers()
                .layer("cli").definedBy("dev.headroom.cli..")
                .layer("server").definedBy("dev.headroom.server..")
                .layer("models").definedBy("dev.headroom.models..")
                .layer("runtime").definedBy("dev.headroom.runtime..")
                .layer("cuda").definedBy("dev.headroom.cuda..")
                .layer("core").definedBy("dev.headroom.core..")
                .whereLayer("cli").mayNotBeAccessedByAnyLayer()
                .whereLayer("server").mayOnlyBeAccessedByLayers("cli")
                .whereLayer("models").mayOnlyBeAccessedByLayers("cli", "server")
                .whereLayer("runtime").mayOnlyBeAccessedByLayers("cli", "server", "models")
                .whereLayer("cuda").mayOnlyBeAccessedByLayers("cli", "server", "models", "runtime")
                .allowEmptyShould(true)
                .check(CLASSES);
    }

    @Test
    void coreIsPureLogic() {
        noClasses().that().resideInAPackage("dev.headroom.core..")
                .should().dependOnClassesThat().resideInAnyPackage("java.io..", "java.nio.file..", "java.net..",
                        "java.lang.foreign..", "java.util.concurrent..", "java.awt..", "javax.imageio..")
                .check(CLASSES);
    }

    @Test
    void onlyCudaTouchesTheLinker() {
        noClasses().that().resideOutsideOfPackage("dev.headroom.cuda..")
                .should().dependOnClassesThat().haveFullyQualifiedName("java.lang.foreign.Linker")
                .check(CLASSES);
    }
}
