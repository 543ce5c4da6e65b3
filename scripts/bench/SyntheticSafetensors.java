// Writes a synthetic model (SyntheticModels: seeded random weights of a real architecture) as a
// safetensors file in fp32, fp16 or bf16, and optionally a crop of a PNG, for host-memory runs:
//   java -cp target/classes:target/test-classes:'target/lib/*' scripts/bench/SyntheticSafetensors.java rrdbnet-x4 fp16 OUT.safetensors [IN.png X Y W H CROP.png]
import dev.headroom.core.Precision;
import dev.headroom.models.SyntheticModels;
import dev.headroom.testing.SafetensorsFiles;
import java.nio.file.Path;

class SyntheticSafetensors {
    public static void main(String[] a) throws Exception {
        SafetensorsFiles.write(Path.of(a[2]), SyntheticModels.stateDict(a[0], 2026), Precision.parse(a[1]));
        if (a.length > 3) {
            var img = javax.imageio.ImageIO.read(Path.of(a[3]).toFile());
            var crop = img.getSubimage(Integer.parseInt(a[4]), Integer.parseInt(a[5]), Integer.parseInt(a[6]), Integer.parseInt(a[7]));
            javax.imageio.ImageIO.write(crop, "png", Path.of(a[8]).toFile());
        }
    }
}
