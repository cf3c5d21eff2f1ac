// The real-service tests' stand-in for the smoke job: the SparkApplication runs the image's
// org.apache.spark.examples.SparkPi, which Maven Central does not serve. Same computation (Pi from
// `slices` partitions). Arguments: <slices> [<catalog> [<rows>]]. With a catalog it also writes and
// reads an Iceberg table there, so the lake settings of spark-defaults are exercised too; with a
// row count it times a bulk write and read (scripts/bench_batch.py).
import java.util.ArrayList;
import java.util.List;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.SparkSession;

public final class SmokeJob {
  public static void main(String[] args) {
    int slices = Integer.parseInt(args[0]);
    SparkSession spark = SparkSession.builder().getOrCreate();
    JavaSparkContext context = new JavaSparkContext(spark.sparkContext());
    int n = 100_000 * slices;
    List<Integer> samples = new ArrayList<>(n);
    for (int i = 0; i < n; i++) {
      samples.add(i);
    }
    long inside = context.parallelize(samples, slices).filter(i -> {
      double x = Math.random() * 2 - 1;
      double y = Math.random() * 2 - 1;
      return x * x + y * y <= 1;
    }).count();
    double pi = 4.0 * inside / n;
    System.out.println("Pi is roughly " + pi);
    if (args.length > 1) {
      String table = args[1] + ".smoke.pi";
      spark.sql("CREATE NAMESPACE IF NOT EXISTS " + args[1] + ".smoke");
      spark.sql("CREATE TABLE IF NOT EXISTS " + table + " (slices INT, pi DOUBLE) USING iceberg");
      spark.sql("INSERT INTO " + table + " VALUES (" + slices + ", " + pi + ")");
      System.out.println("iceberg rows: " + spark.sql("SELECT * FROM " + table).count());
    }
    if (args.length > 2) {
      // Benchmark mode (scripts/bench_batch.py): write `rows` rows to an Iceberg table, read them back.
      long rows = Long.parseLong(args[2]);
      String bench = args[1] + ".smoke.bench";
      long start = System.nanoTime();
      spark.range(rows).selectExpr("id", "id % 1000 AS bucket", "sha1(CAST(id AS STRING)) AS digest")
          .writeTo(bench).using("iceberg").createOrReplace();
      long written = System.nanoTime();
      // A sum reads every data file (a bare count could be answered from Iceberg's metadata).
      long total = spark.table(bench).selectExpr("sum(bucket)").first().getLong(0);
      long read = System.nanoTime();
      System.out.printf("bench rows=%d write_s=%.2f read_s=%.2f sum=%d%n", rows,
          (written - start) / 1e9, (read - written) / 1e9, total);
    }
    spark.stop();
  }
}
