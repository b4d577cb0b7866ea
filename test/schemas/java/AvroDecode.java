// Reference decoder for the Avro tests: Apache Avro's Java implementation (the one Kafka Connect,
// ksqlDB and Flink use), with its standard logical-type conversions. Reads Confluent-framed
// records (base64, one per line) on stdin, fetches each writer schema by id from the
// Confluent-compatible registry given as the first argument, and prints one JSON line per record:
// {"id":..,"op":..,"after":{field: value-as-text}} where value-as-text is Java's own rendering
// (BigDecimal.toPlainString, LocalDate/Instant/LocalDateTime/LocalTime.toString, UUID, base64).
//
// Run with the JDK's single-file launcher and the Avro jars of the registry distribution:
//   java -cp '.cache/apicurio-registry-3.0.9/lib/*' test/schemas/java/AvroDecode.java <registry-url>
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.math.BigDecimal;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.avro.Conversions;
import org.apache.avro.Schema;
import org.apache.avro.data.TimeConversions;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericDatumReader;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.BinaryDecoder;
import org.apache.avro.io.DecoderFactory;

public class AvroDecode {
  public static void main(String[] args) throws Exception {
    String registry = args[0];
    HttpClient http = HttpClient.newHttpClient();
    ObjectMapper json = new ObjectMapper();
    GenericData data = new GenericData();
    data.addLogicalTypeConversion(new Conversions.DecimalConversion());
    data.addLogicalTypeConversion(new Conversions.UUIDConversion());
    data.addLogicalTypeConversion(new TimeConversions.DateConversion());
    data.addLogicalTypeConversion(new TimeConversions.TimeMicrosConversion());
    data.addLogicalTypeConversion(new TimeConversions.TimestampMicrosConversion());
    data.addLogicalTypeConversion(new TimeConversions.LocalTimestampMicrosConversion());
    Map<Integer, Schema> schemas = new HashMap<>();
    BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
    String line;
    while ((line = in.readLine()) != null) {
      if (line.isBlank()) continue;
      byte[] bytes = Base64.getDecoder().decode(line.trim());
      ByteBuffer head = ByteBuffer.wrap(bytes);
      if (head.get() != 0) throw new IllegalStateException("magic byte is not 0");
      int id = head.getInt();
      Schema schema = schemas.get(id);
      if (schema == null) {
        HttpResponse<String> res = http.send(HttpRequest.newBuilder(URI.create(registry + "/schemas/ids/" + id)).build(), HttpResponse.BodyHandlers.ofString());
        schema = new Schema.Parser().parse(json.readTree(res.body()).get("schema").asText());
        schemas.put(id, schema);
      }
      GenericDatumReader<GenericRecord> reader = new GenericDatumReader<>(schema, schema, data);
      BinaryDecoder dec = DecoderFactory.get().binaryDecoder(bytes, 5, bytes.length - 5, null);
      GenericRecord env = reader.read(null, dec);
      if (!dec.isEnd()) throw new IllegalStateException("trailing bytes after the record");
      Map<String, Object> out = new LinkedHashMap<>();
      out.put("id", id);
      out.put("op", env.get("op").toString());
      out.put("after", text(env.get("after")));
      System.out.println(json.writeValueAsString(out));
    }
  }

  static Object text(Object v) {
    if (v == null) return null;
    if (v instanceof GenericRecord r) {
      Map<String, Object> m = new LinkedHashMap<>();
      for (Schema.Field f : r.getSchema().getFields()) m.put(f.name(), text(r.get(f.name())));
      return m;
    }
    if (v instanceof Map<?, ?> map) {
      Map<String, Object> m = new LinkedHashMap<>();
      for (Map.Entry<?, ?> e : map.entrySet()) m.put(e.getKey().toString(), text(e.getValue()));
      return m;
    }
    if (v instanceof List<?> list) {
      List<Object> l = new ArrayList<>();
      for (Object o : list) l.add(text(o));
      return l;
    }
    if (v instanceof BigDecimal d) return d.toPlainString();
    if (v instanceof ByteBuffer b) {
      byte[] a = new byte[b.remaining()];
      b.duplicate().get(a);
      return Base64.getEncoder().encodeToString(a);
    }
    return v.toString();
  }
}
