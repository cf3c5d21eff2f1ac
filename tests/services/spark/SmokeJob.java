// The rung-5 stand-in for the smoke job: the SparkApplication runs the image's
// org.apache.spark.examples.SparkPi, which Maven Central does not serve. Same computation (Pi from
// `slices` partitions), and with a second argument it also writes and reads an Iceberg table in
// that catalog, so the lake settings of spark-defaults are exercised too.
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
    spark.stop();
  }
}
