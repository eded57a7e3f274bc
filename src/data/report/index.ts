import { writeFileAtomic, writeJsonAtomic } from '../../core/atomic.ts';
import { renderReportHtml } from './html.ts';
import type { DataReport } from './stats.ts';

export { barChart, escapeHtml, histogramChart, renderReportHtml } from './html.ts';
export {
  type DataReport,
  type DatasetStats,
  DatasetStatsBuilder,
  type DuplicateExample,
  type Histogram,
  LENGTH_EDGES,
  RunReportBuilder,
  type StepReport,
} from './stats.ts';

/** Writes report.json and report.html (atomically) and returns their paths. */
export function writeReport(report: DataReport, jsonPath: string, htmlPath: string): { json: string; html: string } {
  writeJsonAtomic(jsonPath, report);
  writeFileAtomic(htmlPath, renderReportHtml(report));
  return { json: jsonPath, html: htmlPath };
}
