// The Studio pages: one Preact app, one page per nav link (real <a href> links, so the keyboard, the back button and
// a reload all work), strings from the shared dictionaries in src/studio/i18n.ts, charts drawn by uPlot. Each page
// lives in pages/; lib.tsx holds what they share.
import { render } from 'preact';
import 'uplot/dist/uPlot.min.css';
import './style.css';
import type { Lang, MessageKey } from '../src/studio/i18n.ts';
import { href, lang, PAGES, type Page, page, t } from './lib.tsx';
import { Datasets, Projects } from './pages/data.tsx';
import { Evaluations } from './pages/evaluations.tsx';
import { LineagePage } from './pages/lineage.tsx';
import { Monitor } from './pages/monitor.tsx';
import { Playground } from './pages/playground.tsx';
import { Training } from './pages/training.tsx';

function Nav() {
  const other: Lang = lang === 'en' ? 'zh-CN' : 'en';
  return (
    <header>
      <a class="skip" href="#main">{t('app.skip')}</a>
      <h1>{t('app.title')}</h1>
      <nav aria-label={t('nav.label')}>
        <ul>
          {PAGES.map((p) => (
            <li><a href={href(p)} aria-current={p === page ? 'page' : undefined}>{t(`nav.${p}` as MessageKey)}</a></li>
          ))}
        </ul>
      </nav>
      <a class="lang" href={href(page, other)} hreflang={other} aria-label={t('lang.switchLabel')}>{t('lang.switch')}</a>
    </header>
  );
}

const VIEWS: Record<Page, () => preact.JSX.Element> = { projects: Projects, datasets: Datasets, training: Training, evaluations: Evaluations, playground: Playground, monitor: Monitor, lineage: LineagePage };
const View = VIEWS[page];
document.title = `${t(`nav.${page}` as MessageKey)} · ${t('app.title')}`;
render(<><Nav /><main id="main" tabIndex={-1}><View /></main></>, document.getElementById('app')!);
