import { type IResource, LambdaIntegration } from 'aws-cdk-lib/aws-apigateway';
import { Construct } from 'constructs';
import { DownloadFunction, type FunctionDefaults } from './functions.ts';
import type { RestMethodGuard } from './streaming-path.ts';

export interface BrowserPageProps {
  /** The REST API's root resource: the page is served at the stage's root (`GET|HEAD /`). */
  readonly apiRoot: IResource;
  /**
   * The API's guard, unchanged: with `apiAuth=iam` the page needs a SigV4 signature like every
   * other method (a browser cannot open it directly); with `none` it is open like the API.
   */
  readonly guard: RestMethodGuard;
  readonly defaults: FunctionDefaults;
}

/**
 * The browser page (web/) at the REST API's root: a small function returns the bundled document
 * (dist/page, built by scripts/build-page.mjs), which then calls the API it came from. It holds
 * no secret, reads no configuration and gets no AWS permission beyond its own logs and tracing.
 */
export class BrowserPage extends Construct {
  readonly function: DownloadFunction;

  constructor(scope: Construct, id: string, props: BrowserPageProps) {
    super(scope, id);
    this.function = new DownloadFunction(this, 'PageFunction', {
      folder: 'page',
      description: 'Serves the browser page (GET / on the REST API).',
      environment: {},
      memorySize: 128,
      invokedSynchronouslyBy: 'API Gateway (REST)',
      defaults: props.defaults,
    });
    const integration = new LambdaIntegration(this.function);
    for (const httpMethod of ['GET', 'HEAD']) {
      props.apiRoot.addMethod(httpMethod, integration, {
        authorizationType: props.guard.authorizationType,
        requestValidator: props.guard.requestValidator,
      });
    }
  }
}
